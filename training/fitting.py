"""Data to a fitted model, without tracking: `prepare(cfg)` (split, labels, encoder, windows) and `fit()`.

`training.train` wraps these with MLflow, baselines and the registry; benchmarks and the GPU machine
(which has no MLflow) call them directly, so every path trains with the same code.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
from torch.utils.data import DataLoader, IterableDataset

from models.encoding import EventEncoder
from models.network import ModelConfig
from training.config import TrainConfig
from training.config_io import to_dict
from training.dataset_source import DatasetSource, prepare_dataset
from training.labels import TEST, TRAIN, VAL, Labels, SplitDates, make_labels, naive_utc, split_dates
from training.memory_check import check_memory
from training.module import SignalsModule
from training.rank_report import RankReport
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

        return prepared_from_streaming(cfg, prepare_streaming(cfg))
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


def prepared_from_streaming(cfg: TrainConfig, s) -> Prepared:
    """`Prepared` of a `training.streaming.prepare.StreamingData`: no labels or training window in memory."""
    return Prepared(s.source, s.dates, None, None, s.encoder, s.datasets,
                    ModelConfig(**s.encoder.sizes(), **to_dict(cfg.model)))


def checkpoint_dir(cfg: TrainConfig, run_id: str | None) -> Path:
    """Where `fit` keeps its best checkpoint. Under DDP every rank must name the same folder and only rank
    0 has a run id, so a multi-process run uses `ddp/`; the other ranks pass run_id None."""
    multi = cfg.train.devices * cfg.train.num_nodes > 1
    return Path(cfg.output_dir) / ("ddp" if multi or run_id is None else run_id) / "checkpoints"


def is_global_rank_zero() -> bool:
    """True in a single process and in rank 0 of DDP (Lightning's launcher, torchrun or SLURM set these)."""
    return all(int(os.environ.get(k, "0")) == 0 for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def fit(cfg: TrainConfig, p: Prepared, log_popularity: torch.Tensor, logger, ckpt_dir: Path,
        callbacks: list | None) -> tuple[SignalsModule, float]:
    """Fit with early stopping; returns the module at its best validation epoch and that epoch's score."""
    tc = cfg.train
    check_memory(p.model_cfg, tc)  # a clear error now rather than an out-of-memory crash mid-epoch
    module = SignalsModule(p.model_cfg.to_dict(), to_dict(tc), log_popularity)
    module.model.set_catalogue(torch.from_numpy(p.encoder.product_category), torch.from_numpy(p.encoder.product_brand))
    gen = torch.Generator().manual_seed(tc.seed)
    loader_args = dict(batch_size=tc.batch_size, collate_fn=collate, num_workers=tc.num_workers,
                       pin_memory=tc.accelerator == "gpu", persistent_workers=tc.num_workers > 0)
    if isinstance(p.datasets[TRAIN], IterableDataset):
        # Streaming: the dataset shards partitions over ranks and workers, shuffles and batches itself.
        loader_args["batch_size"] = None
        train_loader = DataLoader(p.datasets[TRAIN], **loader_args)
    else:
        # Under DDP Lightning swaps in a DistributedSampler: each rank reads its own shard of the windows.
        train_loader = DataLoader(p.datasets[TRAIN], shuffle=True, generator=gen, **loader_args)
    val_loader = DataLoader(p.datasets[VAL], **loader_args)
    progress = []
    if tc.progress_bar and tc.accelerator != "cpu":
        # Each refresh reads the loss back from the device: a host-device sync. Not every step on a GPU.
        progress = [TQDMProgressBar(refresh_rate=25)]
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
                   checkpoint, RankReport(ckpt_dir.parent), *progress, *(callbacks or [])],
        enable_progress_bar=tc.progress_bar,
        limit_train_batches=tc.limit_train_batches,
        deterministic=tc.deterministic,
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
