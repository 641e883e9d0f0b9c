"""Test predictions and metrics, one partition at a time.

Per partition: labels and TEST windows are built, the existing `training.window_predictions.predict` runs over
them, and only the small per-test-point arrays (label, probability or rank) are kept. The metrics are
the model's metrics of `training.comparison.Comparison` (same functions, same test points from
`training.scored_points`), computed on the concatenation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.network import SessionSignalsModel
from training.labels import TEST, TRAIN
from training.metrics import binary_metrics, next_metrics
from training.scored_points import ScoredPoints
from training.streaming.dataset import StreamContext, partition_split
from training.window_predictions import predict


@dataclass
class StreamedTest:
    intent_y: list[np.ndarray] = field(default_factory=list)
    intent_p: list[np.ndarray] = field(default_factory=list)
    churn_y: list[np.ndarray] = field(default_factory=list)
    churn_p: list[np.ndarray] = field(default_factory=list)
    next_rank: list[np.ndarray] = field(default_factory=list)
    intent_user: list[np.ndarray] = field(default_factory=list)  # the user of each point, for the intervals
    churn_user: list[np.ndarray] = field(default_factory=list)
    next_user: list[np.ndarray] = field(default_factory=list)
    next_dropped_unseen: int = 0
    # training-split label counts, for the bundle's base rates
    train_intent: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.int64))
    train_churn: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.int64))

    @staticmethod
    def _cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0)

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        iy, ip = self._cat(self.intent_y), self._cat(self.intent_p)
        if len(iy):
            out |= binary_metrics("intent", iy, ip, self._cat(self.intent_user))
        cy, cp = self._cat(self.churn_y), self._cat(self.churn_p)
        if len(cy):
            out |= binary_metrics("churn", cy, cp, self._cat(self.churn_user))
        ranks = self._cat(self.next_rank)
        if len(ranks):
            out |= next_metrics(ranks, self._cat(self.next_user))
            out["next_dropped_unseen"] = float(self.next_dropped_unseen)
        return out

    def base_rates(self) -> dict[str, float]:
        rate = lambda c: float(c[1] / c.sum()) if c.sum() else 0.0
        return {"intent_base_rate": rate(self.train_intent), "churn_base_rate": rate(self.train_churn)}


def evaluate_streaming(model: SessionSignalsModel, ctx: StreamContext, batch_size: int = 256) -> StreamedTest:
    """Predict TEST on every partition in turn; returns the per-point arrays (small) for the metrics."""
    out = StreamedTest()
    model.eval()
    for k in range(len(ctx.files)):
        part = partition_split(ctx, k, TEST)
        labels = part.labels
        train_intent = labels.intent[(labels.intent_split == TRAIN) & (labels.intent >= 0)]
        out.train_intent += np.bincount(train_intent.astype(np.int64), minlength=2)[:2]
        train_churn = labels.churn.loc[labels.churn["split"] == TRAIN, "label"].to_numpy(dtype=np.int64)
        out.train_churn += np.bincount(train_churn, minlength=2)[:2]

        pred = predict(model, part.dataset, batch_size=batch_size)
        points = ScoredPoints.of(labels, ctx.encoder)
        intent_p, churn_p, ranks = points.align(f"partition {k}", pred.intent, pred.churn, pred.next_rank)
        if intent_p is not None:
            out.intent_y.append(points.intent_y)
            out.intent_p.append(intent_p)
            out.intent_user.append(points.intent_user)
        if churn_p is not None:
            out.churn_y.append(points.churn_y)
            out.churn_p.append(churn_p)
            out.churn_user.append(points.churn_user)
        out.next_dropped_unseen += points.next_dropped_unseen
        if ranks is not None:
            out.next_rank.append(ranks)
            out.next_user.append(points.next_user)
        del part, labels, pred
    return out
