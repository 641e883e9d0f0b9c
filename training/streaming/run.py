"""`train_streaming(cfg)`: `training.train.train` for data larger than memory.

Same tracking layout (a parent run, a nested "model" run with the same metric names, the bundle as
artifacts, registration), same `fit`; what differs needs the whole table in memory and is left out or
streamed:
- the popularity proposal, the category/brand priors: from the streamed counts;
- test metrics: `training.streaming.evaluate` (per partition, exactly the model's metrics of
  `Comparison`);
- baselines and the oracle are not run (they load the whole table); the parent run says so in a tag;
- lineage: the manifest's counts instead of `DatasetSource.log_lineage`.
`training.train.train` delegates here when `data.streaming` is true (see the note in TRAINING.md).
"""
from __future__ import annotations

import logging

import lightning as L
import mlflow
import torch

from training import tracking
from training.config import TrainConfig
from training.config_io import flatten, to_dict

log = logging.getLogger(__name__)


def train_streaming(cfg: TrainConfig, callbacks: list | None = None, parent_run_id: str | None = None) -> dict:
    from training.streaming.evaluate import evaluate_streaming
    from training.streaming.prepare import prepare_streaming, prior_from_counts
    from training.fitting import checkpoint_dir, fit, is_global_rank_zero, prepared_from_streaming
    from training.tracked_fit import fitted_model_run

    L.seed_everything(cfg.train.seed, workers=True)
    s = prepare_streaming(cfg)
    p = prepared_from_streaming(cfg, s)
    log_popularity = s.log_popularity()  # (P,), for the negatives' proposal and the bundle's fallback ranking
    if not is_global_rank_zero():
        fit(cfg, p, torch.from_numpy(log_popularity), logger=False, ckpt_dir=checkpoint_dir(cfg, None),
            callbacks=callbacks)
        return {}
    uri = tracking.setup(cfg.tracking)
    source, dates = s.source, s.dates
    with mlflow.start_run(run_name=f"train-{source.name}", parent_run_id=parent_run_id,
                          nested=parent_run_id is not None) as parent:
        mlflow.log_params(flatten(to_dict(cfg)))
        mlflow.log_params({"lineage.path": str(source.path), "lineage.sha256": source.sha256,
                           "lineage.events": s.manifest.n_rows, "lineage.partitions": s.manifest.n_partitions,
                           **{f"lineage.{k}": v for k, v in dates.to_dict().items()}})
        mlflow.set_tags({"dataset": source.name, "dataset_key": source.dataset_key(dates), "role": "parent",
                         "data_path": "streaming", "baselines": "skipped (streaming)"})
        with fitted_model_run(cfg, p, log_popularity, uri, source.name, callbacks) as (run_id, model, best_val):
            test = evaluate_streaming(model, s.ctx)
            model_metrics = test.metrics()
            mlflow.log_metrics({f"test_{k}": v for k, v in model_metrics.items()})
            meta = {
                **test.base_rates(),
                "churn_horizon_days": cfg.labels.churn_horizon_days,
                "popularity_log_prob": log_popularity.tolist(),
                "category_prior": prior_from_counts(s.encoder.categories, s.counts.categories),
                "brand_prior": prior_from_counts(s.encoder.brands, s.counts.brands),
                "dataset": source.name,
                "dataset_key": source.dataset_key(dates),
                "split": dates.to_dict(),
                "test_metrics": model_metrics,
            }
            tracking.log_bundle(model, s.encoder, meta)
        registration = tracking.register_if_enabled(cfg.tracking, run_id, source.dataset_key(dates), model_metrics)
    return {"metrics": {"model": model_metrics}, "registration": registration, "best_val": best_val,
            "parent_run_id": parent.info.run_id, "model_run_id": run_id, "tracking_uri": uri,
            "partitions": s.manifest.n_partitions, "events": s.manifest.n_rows}
