"""How far a test figure can be trusted: 95% intervals by a bootstrap over users, and warnings when a
split holds too few points to rank methods.

Points of one user are not independent (a shopper's sessions, a session's events), so the bootstrap
resamples users, not points: each replicate draws as many users as there are, with replacement, and a
point weighs as often as its user was drawn. Every method is resampled with the same draws, so two
methods' intervals are comparable. 200 replicates put the 2.5% and 97.5% quantiles within about
+-0.3 interval widths of their limit, enough to say whether two methods overlap.
"""
from __future__ import annotations

import logging

import numpy as np
from sklearn.metrics import average_precision_score

log = logging.getLogger(__name__)

N_REPLICATES = 200
SEED = 0
# Below these, the interval of a primary metric is typically wider than the gaps between methods.
MIN_POINTS = {"intent": 200, "churn": 100, "next": 200}
MIN_RARER_LABEL = 20


def user_weights(groups: np.ndarray, n_replicates: int = N_REPLICATES, seed: int = SEED) -> np.ndarray:
    """(R, N) weight of each point in each replicate: how often its group was drawn."""
    _, codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, max(n_groups, 1), size=(n_replicates, n_groups))
    counts = np.stack([np.bincount(d, minlength=n_groups) for d in draws])  # (R, G)
    return counts[:, codes].astype(np.float64)


def interval(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.nanquantile(values, [0.025, 0.975])
    return float(lo), float(hi)


def pr_auc_interval(y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    values = []
    for w in user_weights(groups):
        keep = w > 0
        yk = y[keep]
        values.append(average_precision_score(yk, p[keep], sample_weight=w[keep]) if 0 < yk.sum() < len(yk)
                      else np.nan)
    return interval(np.asarray(values))


def mean_interval(values: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """Interval of a mean of per-point values (a hit, a reciprocal rank)."""
    w = user_weights(groups)  # (R, N)
    return interval(w @ values / np.maximum(w.sum(1), 1e-12))


def warn_if_too_small(split: str, task: str, n_points: int, n_positives: int | None = None) -> str | None:
    """Log (and return) a warning when `split` has too few `task` points, or too few of the rarer label,
    to rank methods."""
    rarer = None if n_positives is None else min(n_positives, n_points - n_positives)
    if n_points >= MIN_POINTS[task] and (rarer is None or rarer >= MIN_RARER_LABEL):
        return None
    what = f"{n_points} points" + (f", {rarer} of the rarer label" if rarer is not None else "")
    want = f">= {MIN_POINTS[task]} points" + (f" and >= {MIN_RARER_LABEL} of each label" if rarer is not None else "")
    message = f"{split} set too small to rank methods on {task}: {what} (want {want}); read its figures with their intervals"
    log.warning(message)
    return message
