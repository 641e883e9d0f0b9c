"""`train(cfg) -> metrics`: data -> labels -> Lightning training -> evaluation beside baselines -> MLflow -> registry."""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import mlflow
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from torch.utils.data import DataLoader, IterableDataset

from models.bundle import save_bundle
from models.encoding import EventEncoder
from models.network import ModelConfig
from training import tracking
from training.comparison import Comparison
from training.config import TrainConfig
from training.config_io import flatten, to_dict
from training.dataset_source import DatasetSource, prepare_dataset
from training.labels import TEST, TRAIN, VAL, Labels, SplitDates, make_labels, naive_utc, split_dates
from training.memory_check import check_memory
from training.module import SignalsModule
from training.rank_report import RankReport
from training.predict import predict
from training.windows import WindowDataset, build_split, collate

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Everything a run derives from the data before training: split, labels, encoder, datasets."""
    source: DatasetSource
    dates: SplitDates
    labels: Labels
    train_window: pd.DataFrame
    encoder: EventEncoder
    datasets: dict[int, WindowDataset]
    model_cfg: ModelConfig


def prepare(cfg: TrainConfig) -> Prepared:
    """In memory; or, with data.streaming, out of core: then `labels` and `train_window` are None and the
    datasets are `training.streaming.StreamingWindows` (see `training.streaming.train_streaming`)."""
    if cfg.data.streaming:
        from training.streaming.prepare import prepare_streaming

        s = prepare_streaming(cfg)
        model_cfg = ModelConfig(**s.encoder.sizes(), **to_dict(cfg.model))
        return Prepared(s.source, s.dates, None, None, s.encoder, s.datasets, model_cfg)
    source = prepare_dataset(cfg.data, cfg.labels.churn_horizon_days)
    dates = split_dates(source.events, cfg.split, source.test_start)
    labels = make_labels(source.events, dates, cfg.labels)
    train_window = labels.events[naive_utc(labels.events["ts"]) < np.datetime64(dates.val_start.tz_localize(None), "us")]
    encoder = EventEncoder.fit(train_window, min_count=cfg.labels.min_count)
    encoded = encoder.encode(labels.events)
    window = cfg.model.max_len
    datasets = {s: WindowDataset(build_split(labels, encoded, s, window), window) for s in (TRAIN, VAL, TEST)}
    log.info("split %s; windows train %d, val %d, test %d; catalogue %d products",
             dates.to_dict(), *(len(datasets[s]) for s in (TRAIN, VAL, TEST)), len(encoder.products))
    model_cfg = ModelConfig(**encoder.sizes(), **to_dict(cfg.model))
    return Prepared(source, dates, labels, train_window, encoder, datasets, model_cfg)


def train(cfg: TrainConfig, callbacks: list | None = None, parent_run_id: str | None = None) -> dict:
    """Train, evaluate beside baselines, track and register; returns metrics per method and the registration.

    Under DDP every process runs this function; only rank 0 tracks, evaluates and registers.
    """
    if cfg.data.streaming:  # out of core: its own driver (no in-memory baselines at that scale)
        from training.streaming.run import train_streaming

        return train_streaming(cfg, callbacks, parent_run_id)
    L.seed_everything(cfg.train.seed, workers=True)
    p = prepare(cfg)
    log_q = torch.from_numpy(popularity_log_prob(p.encoder, p.train_window))
    if not is_global_rank_zero():
        fit(cfg, p, log_q, logger=False, ckpt_dir=Path(cfg.output_dir) / "ddp" / "checkpoints", callbacks=callbacks)
        return {}
    uri = tracking.setup(cfg.tracking)
    source, dates, labels, encoder = p.source, p.dates, p.labels, p.encoder
    with mlflow.start_run(run_name=f"train-{source.name}", parent_run_id=parent_run_id,
                          nested=parent_run_id is not None) as parent:
        mlflow.log_params(flatten(to_dict(cfg)))
        source.log_lineage(dates, labels)
        mlflow.set_tags({"dataset": source.name, "dataset_key": source.dataset_key(dates), "role": "parent"})
        with mlflow.start_run(run_name="model", nested=True) as model_run:
            run_id = model_run.info.run_id
            mlflow.set_tags({"method": "model", "encoder": cfg.model.encoder, "dataset": source.name})
            mlflow.log_params(flatten(to_dict(cfg)))
            logger = MLFlowLogger(experiment_name=cfg.tracking.experiment, tracking_uri=uri, run_id=run_id)
            ckpt_dir = Path(cfg.output_dir) / ("ddp" if cfg.train.devices * cfg.train.num_nodes > 1 else run_id) / "checkpoints"
            module, best_val = fit(cfg, p, log_q, logger, ckpt_dir, callbacks)
            model = module.model.cpu().eval()
            predictions = predict(model, p.datasets[TEST])
            comparison = Comparison(labels, encoder, cfg, source)
            model_metrics = comparison.add_model(predictions)
            mlflow.log_metrics({f"test_{k}": v for k, v in model_metrics.items()})
            with tempfile.TemporaryDirectory() as tmp:
                meta = bundle_meta(labels, encoder, p.train_window, cfg, source, dates, model_metrics)
                save_bundle(Path(tmp) / "bundle", model, encoder, meta)
                mlflow.log_artifacts(str(Path(tmp) / "bundle"), tracking.BUNDLE_ARTIFACT)
        results = {"model": model_metrics, **comparison.run_baselines_and_oracle()}
        comparison.log_to_parent(parent.info.run_id)
        registration = None
        if cfg.tracking.register:
            registration = tracking.register(run_id, cfg.tracking.model_name, source.dataset_key(dates),
                                             model_metrics, cfg.tracking.promote)
            mlflow.set_tags({f"registered_{k}": str(v) for k, v in registration.items()})
    print(comparison.table())
    return {"metrics": results, "registration": registration, "best_val": best_val,
            "parent_run_id": parent.info.run_id, "model_run_id": run_id, "tracking_uri": uri}


def is_global_rank_zero() -> bool:
    """True in a single process and in rank 0 of DDP (Lightning's launcher, torchrun or SLURM set these)."""
    return all(int(os.environ.get(k, "0")) == 0 for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def fit(cfg: TrainConfig, p: Prepared, log_q: torch.Tensor, logger, ckpt_dir: Path,
        callbacks: list | None) -> tuple[SignalsModule, float]:
    """Fit with early stopping; returns the module at its best validation epoch and that epoch's score."""
    tc = cfg.train
    check_memory(p.model_cfg, tc)  # a clear error now rather than an out-of-memory crash mid-epoch
    module = SignalsModule(p.model_cfg.to_dict(), to_dict(tc), log_q)
    module.model.set_catalogue(torch.from_numpy(p.encoder.product_category), torch.from_numpy(p.encoder.product_brand))
    gen = torch.Generator().manual_seed(tc.seed)
    loader_args = dict(batch_size=tc.batch_size, collate_fn=collate, num_workers=tc.num_workers,
                       pin_memory=tc.accelerator == "gpu", persistent_workers=tc.num_workers > 0)
    if isinstance(p.datasets[TRAIN], IterableDataset):
        # Streaming: the dataset shards partitions over ranks and workers and shuffles them itself.
        train_loader = DataLoader(p.datasets[TRAIN], **loader_args)
    else:
        # Under DDP Lightning swaps in a DistributedSampler: each rank reads its own shard of the windows.
        train_loader = DataLoader(p.datasets[TRAIN], shuffle=True, generator=gen, **loader_args)
    val_loader = DataLoader(p.datasets[VAL], **loader_args)
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, monitor=tc.monitor, mode=monitor_mode(tc.monitor), save_top_k=1)
    trainer = L.Trainer(
        max_epochs=tc.max_epochs,
        accelerator=tc.accelerator,
        devices=tc.devices,
        num_nodes=tc.num_nodes,
        strategy=tc.strategy,
        precision=tc.precision,
        logger=logger,
        callbacks=[EarlyStopping(monitor=tc.monitor, mode=monitor_mode(tc.monitor), patience=tc.patience),
                   checkpoint, RankReport(ckpt_dir.parent), *(callbacks or [])],
        enable_progress_bar=tc.progress_bar,
        limit_train_batches=tc.limit_train_batches,
        deterministic=True,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
        enable_model_summary=False,
    )
    trainer.fit(module, train_loader, val_loader)
    best = float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else float("nan")
    if checkpoint.best_model_path and trainer.is_global_zero:
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
        log.info("restored best epoch (%s = %.4f)", tc.monitor, best)
    return module, best


def monitor_mode(monitor: str) -> str:
    return "min" if "loss" in monitor else "max"


def popularity_log_prob(encoder: EventEncoder, train_window: pd.DataFrame) -> np.ndarray:
    """(P,) log share of each product among training-window events; PAD/UNK get -1e9 (never drawn)."""
    counts = np.bincount(encoder.products.encode(train_window["product_id"]), minlength=len(encoder.products))
    counts = counts.astype(np.float64) + 1e-3  # smoothing: products seen only in rare ways stay rankable
    counts[:2] = 0.0
    with np.errstate(divide="ignore"):
        log_p = np.log(counts / counts.sum())
    return np.where(np.isfinite(log_p), log_p, -1e9)


def bundle_meta(labels: Labels, encoder: EventEncoder, train_window: pd.DataFrame, cfg: TrainConfig,
                source: DatasetSource, dates, metrics: dict[str, float]) -> dict:
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
        "popularity_log_prob": popularity_log_prob(encoder, train_window).tolist(),
        "category_prior": prior(encoder.categories.encode(train_window["category"]), len(encoder.categories)),
        "brand_prior": prior(encoder.brands.encode(train_window["brand"]), len(encoder.brands)),
        "dataset": source.name,
        "dataset_key": source.dataset_key(dates),
        "split": dates.to_dict(),
        "test_metrics": metrics,
    }
