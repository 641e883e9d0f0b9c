"""`train(cfg) -> metrics`: data -> labels -> Lightning training -> evaluation beside baselines -> MLflow -> registry."""
from __future__ import annotations

import logging

import lightning as L
import mlflow
import numpy as np
import pandas as pd
import torch

from models.encoding import EventEncoder
from training import tracking
from training.comparison import Comparison
from training.config import TrainConfig
from training.config_io import flatten, to_dict
from training.dataset_source import DatasetSource
from training.fitting import checkpoint_dir, fit, is_global_rank_zero, popularity_log_prob, prepare
from training.labels import TEST, TRAIN, Labels
from training.predict import predict
from training.tracked_fit import fitted_model_run

log = logging.getLogger(__name__)


def train(cfg: TrainConfig, callbacks: list | None = None, parent_run_id: str | None = None) -> dict:
    """Train, evaluate beside baselines, track and register; returns metrics per method and the registration.

    Under DDP every process runs this function; only rank 0 tracks, evaluates and registers.
    """
    if cfg.data.streaming:  # out of core: its own driver (no in-memory baselines at that scale)
        from training.streaming.run import train_streaming

        return train_streaming(cfg, callbacks, parent_run_id)
    L.seed_everything(cfg.train.seed, workers=True)
    p = prepare(cfg)
    log_popularity = popularity_log_prob(p.encoder, p.train_window)  # (P,) the negatives' proposal, the bundle's fallback
    if not is_global_rank_zero():
        fit(cfg, p, torch.from_numpy(log_popularity), logger=False, ckpt_dir=checkpoint_dir(cfg, None),
            callbacks=callbacks)
        return {}
    uri = tracking.setup(cfg.tracking)
    source, dates, labels, encoder = p.source, p.dates, p.labels, p.encoder
    with mlflow.start_run(run_name=f"train-{source.name}", parent_run_id=parent_run_id,
                          nested=parent_run_id is not None) as parent:
        mlflow.log_params(flatten(to_dict(cfg)))
        source.log_lineage(dates, labels)
        mlflow.set_tags({"dataset": source.name, "dataset_key": source.dataset_key(dates), "role": "parent"})
        with fitted_model_run(cfg, p, log_popularity, uri, source.name, callbacks) as (run_id, model, best_val):
            predictions = predict(model, p.datasets[TEST])
            comparison = Comparison(labels, encoder, cfg, source)
            model_metrics = comparison.add_model(predictions)
            mlflow.log_metrics({f"test_{k}": v for k, v in model_metrics.items()})
            tracking.log_bundle(model, encoder, bundle_meta(labels, encoder, p.train_window, log_popularity, cfg,
                                                            source, dates, model_metrics))
        results = {"model": model_metrics, **comparison.run_baselines_and_oracle()}
        comparison.log_to_parent(parent.info.run_id)
        registration = tracking.register_if_enabled(cfg.tracking, run_id, source.dataset_key(dates), model_metrics)
    print(comparison.table())
    return {"metrics": results, "registration": registration, "best_val": best_val,
            "parent_run_id": parent.info.run_id, "model_run_id": run_id, "tracking_uri": uri}


def bundle_meta(labels: Labels, encoder: EventEncoder, train_window: pd.DataFrame, log_popularity: np.ndarray,
                cfg: TrainConfig, source: DatasetSource, dates, metrics: dict[str, float]) -> dict:
    """What serving needs beside the weights: base rates and priors for empty histories, and provenance."""
    train_intent = labels.intent[(labels.intent_split == TRAIN) & (labels.intent >= 0)]
    train_churn = labels.churn.loc[labels.churn["split"] == TRAIN, "label"]

    def prior(ids: np.ndarray, n: int) -> list[float]:
        c = np.bincount(ids, minlength=n).astype(np.float64)
        c[:2] = 0.0
        return (c / max(c.sum(), 1.0)).tolist()

    return {
        "intent_base_rate": float(train_intent.mean()) if len(train_intent) else 0.0,
        "churn_base_rate": float(train_churn.mean()) if len(train_churn) else 0.0,
        "churn_horizon_days": cfg.labels.churn_horizon_days,
        "popularity_log_prob": log_popularity.tolist(),
        "category_prior": prior(encoder.categories.encode(train_window["category"]), len(encoder.categories)),
        "brand_prior": prior(encoder.brands.encode(train_window["brand"]), len(encoder.brands)),
        "dataset": source.name,
        "dataset_key": source.dataset_key(dates),
        "split": dates.to_dict(),
        "test_metrics": metrics,
    }
