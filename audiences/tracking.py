"""The MLflow run of a scoring: input (hash, rows, as_of), model version, thresholds, audience sizes.

Any audience file can then be traced to the model and the data it came from: the run carries the
output folder, and the folder's report.json carries the run id.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from events.config_io import flatten, to_dict
from registry import resolve_uri, use_experiment

EXPERIMENT = "session-signals-scoring"


@contextmanager
def scoring_run(tracking_uri: str, run_name: str) -> Iterator[str]:
    """An active run (its id); an exception inside ends it FAILED."""
    import mlflow

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    use_experiment(resolve_uri(tracking_uri), EXPERIMENT)
    with mlflow.start_run(run_name=run_name) as run:
        yield run.info.run_id


def log_scoring(report: dict, thresholds) -> None:
    import mlflow
    import pandas as pd

    data, model = report["input"], report["model"]
    summary = pd.DataFrame([{"rows": data["rows"], "as_of": report["as_of"], "sha256": data["sha256"]}])
    mlflow.log_input(mlflow.data.from_pandas(summary, source=data["path"], name=data["name"], digest=data["sha256"][:16]),
                     context="scoring")
    mlflow.log_params({**{f"thresholds.{k}": v for k, v in flatten(to_dict(thresholds)).items()},
                       "as_of": report["as_of"], "input.sha256": data["sha256"], "input.rows": data["rows"],
                       "input.path": data["path"]})
    mlflow.set_tags({"model_name": model["name"], "model_version": str(model["version"]),
                     "model_run_id": str(model["run_id"]), "output": report["output"]})
    mlflow.log_metrics({"customers_scored": report["customers_scored"],
                        "customers_without_events_before_as_of": report["customers_without_events_before_as_of"],
                        "live_sessions": report["live_sessions"], "customers_per_second": report["customers_per_second"],
                        **{f"audience_{name}": size for name, size in report["audiences"].items()}})
    mlflow.log_dict(report, "report.json")
