"""An experiment inside the service: each shopper answered by the arm the split assigns them, and the
exposure handed to the assignment log. Same `predict` as SignalsEngine, so the batcher and the service do
not know the difference. No BentoML here.

Contract: a shopper with a user_id gets their arm's answer plus `experiment` (name, arm, request id); a
holdout shopper gets no model answer (null intent and churn, no products, affinities or segments, model
null); a request without a user_id (or with "") is answered by the control arm outside the experiment:
not logged, counted in `unassigned`.
"""
from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from events.exposures import exposure_line, record_configuration
from serving.api_types import ExperimentArm, HistorySummary, ModelIdentity, ShopperRequest, ShopperSignals
from serving.assignment_log import AssignmentLog
from serving.engine import SignalsEngine
from serving.experiment import PinnedExperiment, Split, validate
from serving.segments import SegmentRules

Count = Callable[[str, str, int], None]
"""(what, arm, n): what is "exposed", "unassigned" or "dropped"; the service feeds its /metrics with it."""


class SplitEngine:
    def __init__(self, experiment: PinnedExperiment, engines: dict[str, SignalsEngine | None], log: AssignmentLog,
                 count: Count | None = None):
        self.experiment = experiment
        self.split = Split.of(experiment)
        self.engines = engines  # arm -> its engine; None for the holdout
        self.versions = {arm: None if e is None else e.identity.version for arm, e in engines.items()}
        self.log = log
        self.count = count or (lambda what, arm, n: None)

    @classmethod
    def from_pinned(cls, experiment: PinnedExperiment, rules: SegmentRules, count: Count | None = None,
                    trends: Path | None = None) -> "SplitEngine":
        """Every arm's engine loaded (the same bundle twice shares nothing: arms stay independent), the log opened
        and the configuration recorded in its manifest."""
        validate(experiment)
        engines = {arm.name: None if arm.bundle is None else
                   SignalsEngine.from_bundle(Path(arm.bundle), ModelIdentity(**arm.identity), rules, trends)
                   for arm in experiment.arms}
        cfg = experiment.log
        log = AssignmentLog(Path(cfg.dir), experiment.name, max_file_mb=cfg.max_file_mb,
                            max_file_minutes=cfg.max_file_minutes, queue_size=cfg.queue_size,
                            fsync_seconds=cfg.fsync_seconds, min_free_mb=cfg.min_free_mb)
        record_configuration(cfg.dir, experiment.name, experiment.configuration())
        return cls(experiment, engines, log, count)

    def predict(self, requests: Sequence[ShopperRequest], as_of: Sequence[datetime]) -> list[ShopperSignals]:
        arms = [self.split.arm_of(r.user_id) if r.user_id else None for r in requests]
        answers: list[ShopperSignals | None] = [None] * len(requests)
        for arm in dict.fromkeys(a or self.experiment.control for a in arms):
            rows = [i for i, a in enumerate(arms) if (a or self.experiment.control) == arm]
            engine = self.engines[arm]
            scored = (engine.predict([requests[i] for i in rows], [as_of[i] for i in rows]) if engine is not None
                      else [_held_out(requests[i], as_of[i]) for i in rows])
            for i, signals in zip(rows, scored):
                answers[i] = signals
        self._log_exposures(requests, arms, answers)
        return answers

    def _log_exposures(self, requests: Sequence[ShopperRequest], arms: list[str | None],
                       answers: list[ShopperSignals]) -> None:
        """Name the arm in each answer and hand one line per assigned shopper to the log (never waits)."""
        name, control, now = self.experiment.name, self.experiment.control, datetime.now(UTC)
        lines, exposed = [], Counter()
        for request, arm, signals in zip(requests, arms, answers):
            if arm is None:
                signals.experiment = ExperimentArm.model_construct(
                    name=name, arm=control, assigned=False, holdout=False, request_id=None)
                exposed[None] += 1
                continue
            request_id = uuid.uuid4().hex
            signals.experiment = ExperimentArm.model_construct(
                name=name, arm=arm, assigned=True, holdout=self.engines[arm] is None, request_id=request_id)
            lines.append(exposure_line(now, name, arm, request.user_id, self.versions[arm], request_id))
            exposed[arm] += 1
        for arm, n in exposed.items():
            self.count("exposed" if arm else "unassigned", arm or control, n)
        dropped = self.log.offer(lines) if lines else 0
        if dropped:
            self.count("dropped", "", dropped)

    def warm_up(self) -> None:
        for engine in self.engines.values():
            if engine is not None:
                engine.warm_up()

    def problem(self) -> str | None:
        return self.log.problem()

    def close(self) -> None:
        self.log.close()


def _held_out(request: ShopperRequest, as_of: datetime) -> ShopperSignals:
    return ShopperSignals.model_construct(
        user_id=request.user_id, as_of=as_of, purchase_intent=None, churn_risk=None, products=[], categories=[],
        brands=[], segments=[], model=None,
        history=HistorySummary(events_received=len(request.events), events_used=0, unknown_products=0))
