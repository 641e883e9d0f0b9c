"""Test metrics with one naming scheme for the model, every baseline and the oracle.

Names (MLflow metric keys, sortable side by side): `intent_roc_auc`, `intent_pr_auc`, `intent_brier`,
`intent_ece`, `intent_gain_top10`, the same with `churn_`, and `next_recall_at_20`, `next_mrr_at_20`,
`next_ndcg_at_20`. Primary metrics: intent PR-AUC, churn PR-AUC, next MRR@20 and Recall@20.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from torchmetrics.functional.classification import binary_calibration_error

from models.ranking import TOP_K, rank_metrics
from training.intervals import mean_interval, pr_auc_interval

PRIMARY_METRICS = ("intent_pr_auc", "churn_pr_auc", "next_mrr_at_20", "next_recall_at_20")


def binary_metrics(task: str, y: np.ndarray, p: np.ndarray, users: np.ndarray | None = None) -> dict[str, float]:
    """ROC-AUC, PR-AUC, Brier, expected calibration error (10 bins) and gains in the top 10%; with `users`
    (the user of each point), PR-AUC's 95% interval too (`training.intervals`)."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    out = {f"{task}_n": float(len(y)), f"{task}_positive_rate": float(y.mean()) if len(y) else float("nan")}
    if len(np.unique(y)) < 2:
        return out  # AUCs are undefined with one class; say so by omission rather than a fake number
    out[f"{task}_roc_auc"] = float(roc_auc_score(y, p))
    out[f"{task}_pr_auc"] = float(average_precision_score(y, p))
    out[f"{task}_brier"] = float(brier_score_loss(y, p))
    out[f"{task}_ece"] = float(binary_calibration_error(torch.tensor(p), torch.tensor(y), n_bins=10))
    out[f"{task}_gain_top10"] = gain_at(y, p, 0.10)
    if users is not None:
        out[f"{task}_pr_auc_ci_low"], out[f"{task}_pr_auc_ci_high"] = pr_auc_interval(y, p, users)
    return out


def gain_at(y: np.ndarray, p: np.ndarray, share: float) -> float:
    """Share of all positives found in the top `share` of scores (ties broken against the model)."""
    n_top = max(int(np.ceil(share * len(y))), 1)
    # Sort by score descending, and among equal scores put negatives first: ties never help.
    order = np.lexsort((y, -p))
    return float(y[order[:n_top]].sum() / max(y.sum(), 1))


def next_metrics(ranks: np.ndarray, users: np.ndarray | None = None) -> dict[str, float]:
    """Recall, MRR and NDCG at TOP_K; with `users`, 95% intervals of Recall and MRR."""
    ranks = np.asarray(ranks, dtype=np.float64)
    m = rank_metrics(torch.tensor(ranks), k=TOP_K)  # a copy: test-point arrays may be read-only
    out = {"next_n": float(len(ranks)), **{f"next_{k.replace('@', '_at_')}": v for k, v in m.items()}}
    if users is not None and len(ranks):
        hit = ranks <= TOP_K
        for name, values in (("recall", hit.astype(np.float64)), ("mrr", np.where(hit, 1.0 / ranks, 0.0))):
            out[f"next_{name}_at_{TOP_K}_ci_low"], out[f"next_{name}_at_{TOP_K}_ci_high"] = mean_interval(values, users)
    return out
