"""The model beside every baseline (and the simulator's oracle) on exactly the same test points.

Each method becomes a nested MLflow run with the same metric names, so a reviewer can sort them side
by side; the parent run gets the comparison table and the plots.
"""
from __future__ import annotations

import json
import logging

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from events.source import DatasetSource
from models.encoding import EventEncoder
from training import plots
from training.config import TrainRunConfig
from training.intervals import N_REPLICATES
from training.labels import TRAIN, Labels
from training.metrics import PRIMARY_METRICS, binary_metrics, next_metrics
from training.scored_points import ScoredPoints
from training.window_predictions import Predictions

log = logging.getLogger(__name__)
# MLflow is imported where a comparison is logged, not at import: the in-memory preparation that
# benchmarks and tuning share (training.in_memory) builds a Comparison without logging it, and MLflow
# costs seconds to import (and is absent on the GPU machine's image).
TABLE_COLUMNS = ("intent_roc_auc", "intent_pr_auc", "intent_brier", "churn_roc_auc", "churn_pr_auc",
                 "churn_brier", "next_recall_at_20", "next_mrr_at_20", "next_ndcg_at_20")


class Comparison:
    def __init__(self, labels: Labels, encoder: EventEncoder, cfg: TrainRunConfig, source: DatasetSource):
        self.labels, self.encoder, self.cfg, self.source = labels, encoder, cfg, source
        self.points = ScoredPoints.of(labels, encoder)
        self.metrics: dict[str, dict[str, float]] = {}
        self.intent_scored: plots.Scored = {}
        self.churn_scored: plots.Scored = {}
        self.ranks: dict[str, np.ndarray] = {}
        self.model_run_id: str | None = None

    def add_model(self, predictions: Predictions) -> dict[str, float]:
        import mlflow

        self.model_run_id = mlflow.active_run().info.run_id
        return self._score("model", predictions.intent, predictions.churn, predictions.next_rank)

    def _score(self, method: str, intent: pd.Series | None, churn: pd.Series | None,
               next_rank: pd.Series | np.ndarray | None) -> dict[str, float]:
        metrics: dict[str, float] = {}
        pt = self.points
        intent_p, churn_p, ranks = pt.align(method, intent, churn, next_rank)
        if intent_p is not None:
            metrics |= binary_metrics("intent", pt.intent_y, intent_p, pt.intent_user)
            self.intent_scored[method] = (pt.intent_y, intent_p)
        if churn_p is not None:
            metrics |= binary_metrics("churn", pt.churn_y, churn_p, pt.churn_user)
            self.churn_scored[method] = (pt.churn_y, churn_p)
        if ranks is not None:
            metrics |= next_metrics(ranks, pt.next_user)
            metrics["next_dropped_unseen"] = float(pt.next_dropped_unseen)
            self.ranks[method] = ranks
        self.metrics[method] = metrics
        return metrics

    def run_baselines_and_oracle(self) -> dict[str, dict[str, float]]:
        from training.baselines import (
            churn_base_rate,
            fit_predict_churn,
            fit_predict_intent,
            intent_base_rate,
            popularity_ranks,
            vsknn_ranks,
        )
        import mlflow

        from training.oracle import oracle_predictions

        labels, seed, bc = self.labels, self.cfg.train.seed, self.cfg.baselines
        methods = {
            "base_rate": lambda: (intent_base_rate(labels) if self._has_intent() else None,
                                  churn_base_rate(labels) if self._has_churn() else None, None),
        }
        if bc.enabled:
            methods |= {
                "lightgbm_intent": lambda: (fit_predict_intent(labels, seed) if self._has_intent() else None, None, None),
                "rfm_logreg_churn": lambda: (None, fit_predict_churn(labels, self.cfg.labels.churn_lookback_days, seed)
                                             if self._has_churn() else None, None),
                "popularity": lambda: (None, None, popularity_ranks(labels, self.encoder, self.points.next_rows)),
                "vsknn": lambda: (None, None, vsknn_ranks(labels, self.encoder, self.points.next_rows,
                                                          bc.vsknn_neighbours, bc.vsknn_sample_sessions)),
            }
        oracle = oracle_predictions(self.source, labels, self.cfg.labels.churn_horizon_days)
        if oracle is not None:
            methods["oracle"] = lambda: oracle
        for method, make in methods.items():
            log.info("evaluating %s", method)
            predictions = make()
            if all(p is None for p in predictions):
                continue  # nothing this method can score on this dataset (e.g. churn without purchases)
            with mlflow.start_run(run_name=method if method == "oracle" else f"baseline-{method}", nested=True):
                mlflow.set_tags({"method": method, "dataset": self.source.name})
                metrics = self._score(method, *predictions)
                mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
        if "oracle" in self.metrics:
            self._log_oracle_ratios()
        return {m: v for m, v in self.metrics.items() if m != "model"}

    def _has_intent(self) -> bool:
        return len(self.points.intent_rows) > 0 and len(np.unique(self.points.intent_y)) > 1

    def _has_churn(self) -> bool:
        return len(self.points.churn_keys) > 0 and (self.labels.churn["split"] == TRAIN).any()

    def _log_oracle_ratios(self) -> None:
        """model / oracle for each metric both have: how close to the best achievable the model is."""
        oracle, model = self.metrics["oracle"], self.metrics["model"]
        ratios = {f"oracle_ratio_{k}": model[k] / oracle[k] for k in TABLE_COLUMNS
                  if k in oracle and k in model and oracle[k] > 0 and "brier" not in k}
        self.metrics["model"] |= ratios
        if self.model_run_id:
            from mlflow import MlflowClient

            client = MlflowClient()
            for k, v in ratios.items():
                client.log_metric(self.model_run_id, f"test_{k}", v)

    def log_to_parent(self) -> None:
        import mlflow
        from mlflow import MlflowClient

        mlflow.log_metrics({f"test_{k}": v for k, v in self.metrics["model"].items()})
        mlflow.log_text(self.table(), "comparison.md")
        mlflow.log_text(json.dumps(self.metrics, indent=2), "comparison.json")
        for task, scored in (("intent", self.intent_scored), ("churn", self.churn_scored)):
            if scored:
                _log_figure(plots.roc_pr(task, scored), f"plots/{task}_roc_pr.png")
                _log_figure(plots.calibration(task, scored), f"plots/{task}_calibration.png")
                _log_figure(plots.gains(task, scored), f"plots/{task}_gains.png")
        if self.ranks:
            _log_figure(plots.recall_at_k(self.ranks), "plots/next_recall_at_k.png")
        if self.model_run_id:
            client = MlflowClient()
            history = {name: [(m.step, m.value) for m in client.get_metric_history(self.model_run_id, name)]
                       for name in ("train_loss", "val_loss", "val_score")}
            _log_figure(plots.learning_curves(history), "plots/learning_curves.png")

    def table(self) -> str:
        return format_table(self.metrics, self.points.next_dropped_unseen)


def _log_figure(figure, path: str) -> None:
    import mlflow

    mlflow.log_figure(figure, path)
    plt.close(figure)  # pyplot keeps every figure open until closed: a run makes a dozen


def format_table(metrics: dict[str, dict[str, float]], next_dropped_unseen: int) -> str:
    """Markdown table: one row per method, the shared metric names as columns."""
    cols = [c for c in TABLE_COLUMNS if any(c in m for m in metrics.values())]
    lines = ["| method | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for method, m in metrics.items():
        lines.append(f"| {method} | " + " | ".join(_cell(m, c) for c in cols) + " |")
    primary = ", ".join(PRIMARY_METRICS)
    model = metrics.get("model", {})
    counts = [f"{task} {int(model[f'{task}_n']):,}" + (f" ({int(round(model[f'{task}_n'] * model[f'{task}_positive_rate'])):,} positive)"
                                                       if task != "next" else "")
              for task in ("intent", "churn", "next") if f"{task}_n" in model]
    lines.append(f"\nprimary metrics: {primary}, each with its 95% interval [bootstrap over users, "
                 f"{N_REPLICATES} replicates]; test points: {', '.join(counts) or 'none'}; next-product test points "
                 f"dropped as unseen in training: {next_dropped_unseen}")
    return "\n".join(lines)


def _cell(m: dict[str, float], column: str) -> str:
    if column not in m:
        return ""
    low, high = m.get(f"{column}_ci_low"), m.get(f"{column}_ci_high")
    return f"{m[column]:.4f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None else "")
