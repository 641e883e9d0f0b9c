"""The experiment's counters on /metrics (Prometheus; BentoML sums them over the workers):

- `signals_experiment_exposures_total{experiment, arm}`: shoppers answered inside the experiment;
- `signals_experiment_unassigned_total{experiment, arm}`: requests without a user_id, answered by the control;
- `signals_experiment_log_dropped_total{experiment}`: exposures the assignment log had no room for.

Import this module only inside a worker (the service's __init__): prometheus_client must first be imported
after BentoML has set up its multiprocess directory, or the counters never reach /metrics.
"""
from __future__ import annotations

import logging
import time
from functools import cache

log = logging.getLogger(__name__)
WARN_EVERY_S = 10.0


@cache
def _counters() -> dict:
    from prometheus_client import Counter

    return {
        "exposed": Counter("signals_experiment_exposures", "Shoppers answered inside an experiment",
                           ["experiment", "arm"]),
        "unassigned": Counter("signals_experiment_unassigned", "Requests without a user_id, answered by the control arm",
                              ["experiment", "arm"]),
        "dropped": Counter("signals_experiment_log_dropped", "Exposures dropped: the assignment log's buffer was full",
                           ["experiment"]),
    }


def counter_for(experiment: str):
    """A `Count` (serving/split_engine.py) that feeds the counters; a drop is also logged, once per 10 s."""
    counters = _counters()
    last_warning = [0.0]

    def count(what: str, arm: str, n: int) -> None:
        if what == "dropped":
            counters[what].labels(experiment).inc(n)
            if time.monotonic() - last_warning[0] >= WARN_EVERY_S:
                last_warning[0] = time.monotonic()
                log.warning("assignment log full: %d exposures dropped (the disk is behind; see "
                            "signals_experiment_log_dropped_total)", n)
        else:
            counters[what].labels(experiment, arm).inc(n)
    return count
