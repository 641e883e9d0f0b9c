"""Figures a reviewer would rather look at than read; each returns a matplotlib Figure for mlflow.log_figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: CI and servers have no display
import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

Scored = dict[str, tuple[np.ndarray, np.ndarray]]  # method name -> (labels, probabilities)


def roc_pr(task: str, scored: Scored) -> plt.Figure:
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for name, (y, p) in scored.items():
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, p)
        roc_ax.plot(fpr, tpr, label=name)
        prec, rec, _ = precision_recall_curve(y, p)
        pr_ax.plot(rec, prec, label=name)
    roc_ax.plot([0, 1], [0, 1], ":", color="grey")
    roc_ax.set(title=f"{task}: ROC", xlabel="false positive rate", ylabel="true positive rate")
    pr_ax.set(title=f"{task}: precision-recall", xlabel="recall", ylabel="precision")
    roc_ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def calibration(task: str, scored: Scored) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, (y, p) in scored.items():
        if len(np.unique(y)) < 2:
            continue
        frac, mean_p = calibration_curve(y, p, n_bins=10, strategy="quantile")
        ax.plot(mean_p, frac, marker="o", ms=3, label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(title=f"{task}: calibration", xlabel="predicted probability", ylabel="observed rate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gains(task: str, scored: Scored) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, (y, p) in scored.items():
        order = np.lexsort((y, -p))  # ties: negatives first
        captured = np.cumsum(y[order]) / max(y.sum(), 1)
        ax.plot(np.arange(1, len(y) + 1) / max(len(y), 1), captured, label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(title=f"{task}: cumulative gains", xlabel="share of audience targeted", ylabel="share of positives")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def recall_at_k(ranks_by_method: dict[str, np.ndarray], max_k: int = 50) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    ks = np.arange(1, max_k + 1)
    for name, ranks in ranks_by_method.items():
        ax.plot(ks, [(ranks <= k).mean() for k in ks], label=name)
    ax.set(title="next product: Recall@k (whole catalogue)", xlabel="k", ylabel="recall")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def learning_curves(history: dict[str, list[tuple[int, float]]]) -> plt.Figure:
    """history: metric name -> [(step, value)]."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in sorted(history.items()):
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o", ms=3, label=name)
    ax.set(title="learning curves", xlabel="step", ylabel="value")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
