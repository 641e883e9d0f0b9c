"""Uplift evaluation on randomised points: the Qini curve and coefficient, AUUC and uplift in the top 10%.

Points are ranked by a method's score, best first (ties broken at random, seeded, so that a constant score
gets the random line, not an order that happens to suit it). With Y_T(k), N_T(k) the treated outcomes and
count among the top k, and Y_C(k), N_C(k) the control ones:
  Qini curve         Q(k) = Y_T(k) - Y_C(k) * N_T(k) / N_C(k)    (incremental purchases of targeting the top k)
  Qini coefficient   mean over k of (Q(k) - k / N * Q(N)) / N:  the area between the curve and random targeting,
                     in incremental purchases per point (0 for random targeting, negative below it)
  AUUC               mean over k of (ybar_T(k) - ybar_C(k)) * k / N: the area under the uplift curve
  uplift@10%         ybar_T - ybar_C among the top 10%
With the oracle's true uplift tau (simulated data), the same quantities without outcome noise: Q(k) is the
sum of tau over the top k ("true" Qini; uplift@10% the mean tau there).
Transformed-outcome MSE (for choosing between models, lower is better): with e the treated share,
Z = Y (W - e) / (e (1 - e)) has E[Z | x] = tau(x) under randomisation, so mean (Z - score)^2 is the MSE of
the score against the true uplift plus a constant that does not depend on the score. Unlike the Qini it
reads every point's score, not only their order, and does not hinge on a few points near the top.
"""
from __future__ import annotations

import numpy as np

TOP_SHARE = 0.10


def ranking(score: np.ndarray, seed: int = 0) -> np.ndarray:
    """Indices best first; ties in random order."""
    shuffled = np.random.default_rng(seed).permutation(len(score))
    return shuffled[np.argsort(-score[shuffled], kind="stable")]


def qini_curve(score: np.ndarray, treated: np.ndarray, outcome: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N + 1,) Q(k) for k = 0..N."""
    order = ranking(score, seed)
    t, y = treated[order].astype(bool), outcome[order].astype(np.float64)
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * ~t)
    q = y_t - np.divide(y_c * n_t, n_c, out=np.zeros(len(y)), where=n_c > 0)
    return np.r_[0.0, q]


def observed_metrics(score: np.ndarray, treated: np.ndarray, outcome: np.ndarray, seed: int = 0) -> dict[str, float]:
    n = len(score)
    if n == 0 or treated.all() or not treated.any():
        return {"qini": float("nan"), "auuc": float("nan"), "uplift_at_10": float("nan")}
    q = qini_curve(score, treated, outcome, seed)
    k = np.arange(n + 1)
    order = ranking(score, seed)
    t, y = treated[order].astype(bool), outcome[order].astype(np.float64)
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    gap = (np.divide(np.cumsum(y * t), n_t, out=np.zeros(n), where=n_t > 0)
           - np.divide(np.cumsum(y * ~t), n_c, out=np.zeros(n), where=n_c > 0))
    top = max(round(TOP_SHARE * n), 1)
    t_top, y_top = t[:top], y[:top]
    at_top = (y_top[t_top].mean() - y_top[~t_top].mean()) if t_top.any() and (~t_top).any() else float("nan")
    return {"qini": float(np.mean(q - k / n * q[-1]) / n), "auuc": float(np.mean(gap * np.arange(1, n + 1) / n)),
            "uplift_at_10": float(at_top)}


def true_metrics(score: np.ndarray, true_uplift: np.ndarray, seed: int = 0) -> dict[str, float]:
    n = len(score)
    if n == 0 or np.isnan(true_uplift).any():
        return {}
    tau = true_uplift[ranking(score, seed)]
    q = np.r_[0.0, np.cumsum(tau)]
    k = np.arange(n + 1)
    top = max(round(TOP_SHARE * n), 1)
    return {"true_qini": float(np.mean(q - k / n * q[-1]) / n), "true_uplift_at_10": float(tau[:top].mean())}


def bootstrap_qini(score: np.ndarray, treated: np.ndarray, outcome: np.ndarray, draws: np.ndarray,
                   seed: int = 0) -> tuple[float, float]:
    """95% interval of the observed Qini coefficient over `draws` (B, N) resampled point indices (the same
    draws for every method, so their intervals are comparable)."""
    values = [observed_metrics(score[d], treated[d], outcome[d], seed)["qini"] for d in draws]
    return float(np.nanpercentile(values, 2.5)), float(np.nanpercentile(values, 97.5))


def transformed_outcome_mse(score: np.ndarray, treated: np.ndarray, outcome: np.ndarray) -> float:
    """mean (Z - score)^2, Z the transformed outcome; NaN without both arms."""
    share = float(np.mean(treated)) if len(treated) else float("nan")
    if not 0 < share < 1:
        return float("nan")
    z = outcome * (treated.astype(np.float64) - share) / (share * (1 - share))
    return float(np.mean((z - score) ** 2))
