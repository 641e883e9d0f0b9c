"""`train(cfg) -> metrics`: data -> labels -> Lightning training -> evaluation beside baselines -> MLflow -> registry."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import lightning as L
import mlflow
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from torch.utils.data import DataLoader

from models.bundle import save_bundle
from models.encoding import EventEncoder
from models.network import ModelConfig
from training import tracking
from training.comparison import Comparison
from training.config import TrainConfig
from training.config_io import flatten, to_dict
from training.dataset_source import DatasetSource, prepare_dataset
from training.labels import TEST, TRAIN, VAL, Labels, make_labels, naive_utc, split_dates
from training.module import SignalsModule
from training.predict import predict
from training.windows import WindowDataset, build_split, collate

log = logging.getLogger(__name__)


def train(cfg: TrainConfig, callbacks: list | None = None) -> dict:
    """Train, evaluate beside baselines, track and register; returns metrics per method and the registration."""
    L.seed_everything(cfg.train.seed, workers=True)
    source = prepare_dataset(cfg.data)
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
    uri = tracking.setup(cfg.tracking)
    with mlflow.start_run(run_name=f"train-{source.name}") as parent:
        mlflow.log_params(flatten(to_dict(cfg)))
        source.log_lineage(dates, labels)
        mlflow.set_tags({"dataset": source.name, "dataset_key": source.dataset_key(dates), "role": "parent"})
        with mlflow.start_run(run_name="model", nested=True) as model_run:
            mlflow.set_tags({"method": "model", "encoder": cfg.model.encoder, "dataset": source.name})
            mlflow.log_params(flatten(to_dict(cfg)))
            log_q = torch.from_numpy(np.asarray(popularity_log_prob(encoder, train_window)))
            module, best_val = fit(cfg, model_cfg, datasets, uri, model_run.info.run_id, callbacks, log_q)
            model = module.model.cpu().eval()
            predictions = predict(model, datasets[TEST])
            comparison = Comparison(labels, encoder, cfg, source)
            model_metrics = comparison.add_model(predictions)
            mlflow.log_metrics({f"test_{k}": v for k, v in model_metrics.items()})
            with tempfile.TemporaryDirectory() as tmp:
                meta = bundle_meta(labels, encoder, train_window, cfg, source, dates, model_metrics)
                save_bundle(Path(tmp) / "bundle", model, encoder, meta)
                mlflow.log_artifacts(str(Path(tmp) / "bundle"), tracking.BUNDLE_ARTIFACT)
        results = {"model": model_metrics, **comparison.run_baselines_and_oracle()}
        comparison.log_to_parent(parent.info.run_id)
        registration = None
        if cfg.tracking.register:
            registration = tracking.register(model_run.info.run_id, cfg.tracking.model_name,
                                             source.dataset_key(dates), model_metrics, cfg.tracking.promote)
            mlflow.set_tags({f"registered_{k}": str(v) for k, v in registration.items()})
    print(comparison.table())
    return {"metrics": results, "registration": registration, "best_val": best_val, "parent_run_id": parent.info.run_id,
            "model_run_id": model_run.info.run_id, "tracking_uri": uri}


def fit(cfg: TrainConfig, model_cfg: ModelConfig, datasets: dict[int, WindowDataset], uri: str, run_id: str,
        callbacks: list | None, log_q: torch.Tensor) -> tuple[SignalsModule, float]:
    """Fit with early stopping; returns the module at its best validation epoch and that epoch's score."""
    tc = cfg.train
    module = SignalsModule(model_cfg.to_dict(), to_dict(tc), log_q)
    gen = torch.Generator().manual_seed(tc.seed)
    loader_args = dict(batch_size=tc.batch_size, collate_fn=collate, num_workers=tc.num_workers,
                       pin_memory=tc.accelerator == "gpu", persistent_workers=tc.num_workers > 0)
    train_loader = DataLoader(datasets[TRAIN], shuffle=True, generator=gen, drop_last=False, **loader_args)
    val_loader = DataLoader(datasets[VAL], **loader_args)
    ckpt_dir = Path(cfg.output_dir) / run_id / "checkpoints"
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, monitor=tc.monitor, mode=monitor_mode(tc.monitor), save_top_k=1)
    trainer = L.Trainer(
        max_epochs=tc.max_epochs,
        accelerator=tc.accelerator,
        devices=tc.devices,
        precision=tc.precision,
        logger=MLFlowLogger(experiment_name=cfg.tracking.experiment, tracking_uri=uri, run_id=run_id),
        callbacks=[EarlyStopping(monitor=tc.monitor, mode=monitor_mode(tc.monitor), patience=tc.patience),
                   checkpoint, *(callbacks or [])],
        enable_progress_bar=tc.progress_bar,
        limit_train_batches=tc.limit_train_batches,
        deterministic=True,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
        enable_model_summary=False,
    )
    trainer.fit(module, train_loader, val_loader)
    if checkpoint.best_model_path:
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
        log.info("restored best epoch (%s = %.4f)", tc.monitor, float(checkpoint.best_model_score))
    best = float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else float("nan")
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
