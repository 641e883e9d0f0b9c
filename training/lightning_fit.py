"""Fit the model with Lightning, without tracking: early stopping on validation, the best epoch restored,
a checkpoint of the whole training state after every epoch to resume from (`training.checkpoints`).

`training.train` wraps this with MLflow, evaluation, baselines and the registry; benchmarks and the GPU
machine (which has no MLflow) call it directly, so every path trains with the same code.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from torch.utils.data import DataLoader, IterableDataset

from events.config_io import to_dict
from training.checkpoints import (
    REFIT,
    AtomicCheckpointIO,
    ResumableEarlyStopping,
    every_epoch_checkpoint,
    resume_from,
)
from training.config import TrainConfig, TrainRunConfig
from training.epoch_log import EpochLog
from training.epoch_seed import EpochShuffle, SeedEachEpoch
from training.labels import TRAIN, VAL
from training.memory_check import check_memory
from training.module import SignalsModule
from training.rank_report import RankReport
from training.training_data import TrainingData
from training.windows import collate

log = logging.getLogger(__name__)


def is_global_rank_zero() -> bool:
    """True in a single process and in rank 0 of DDP (Lightning's launcher, torchrun or SLURM set these)."""
    return all(int(os.environ.get(k, "0")) == 0 for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def fit(cfg: TrainRunConfig, p: TrainingData, log_popularity: torch.Tensor, logger, ckpt_dir: Path,
        callbacks: list | None, epochs: int | None = None, resume: bool = False) -> tuple[SignalsModule, float]:
    """Fit with early stopping; returns the module at its best validation epoch and that epoch's score.
    `module.epochs_trained` says how many epochs the returned weights saw.

    With `epochs` (the final refit on train + validation): exactly that many epochs, no validation, nothing
    to select; the score is NaN. With `resume`, continue from the checkpoint of the last finished epoch in
    `ckpt_dir` (the refit: in its `refit/`) when there is one: the same result as a run never interrupted."""
    tc = cfg.train
    torch.set_num_threads(training_threads(tc.threads))
    check_memory(p.model_cfg, tc)  # a clear error now rather than an out-of-memory crash mid-epoch
    # The initial weights depend on the seed alone, not on what ran before in this process (a refit after a
    # resumed fit starts from the same weights as one after an uninterrupted fit).
    torch.manual_seed(tc.seed)
    module = SignalsModule(p.model_cfg.to_dict(), to_dict(tc), log_popularity)
    module.model.set_catalogue(torch.from_numpy(p.encoder.product_category), torch.from_numpy(p.encoder.product_brand))
    # Each loader draws its workers' base seed from its own generator, not the global one: where Lightning
    # creates the iterator (before or after the epoch's reseed) must not move the dropout masks of a resumed run.
    loader_args = dict(batch_size=tc.batch_size, collate_fn=collate, num_workers=tc.num_workers,
                       pin_memory=tc.accelerator == "gpu", persistent_workers=tc.num_workers > 0,
                       generator=torch.Generator().manual_seed(tc.seed))
    if isinstance(p.datasets[TRAIN], IterableDataset):
        # Streaming: the dataset shards partitions over ranks and workers, shuffles and batches itself.
        loader_args["batch_size"] = None
        train_loader = DataLoader(p.datasets[TRAIN], **loader_args)
    else:
        # Under DDP Lightning swaps in a DistributedSampler: each rank reads its own shard of the windows.
        train_loader = DataLoader(p.datasets[TRAIN], sampler=EpochShuffle(p.datasets[TRAIN], tc.seed), **loader_args)
    if epochs is not None:
        return fit_epochs(cfg, module, train_loader, logger, ckpt_dir, callbacks, epochs, resume), float("nan")
    val_loader = DataLoader(p.datasets[VAL], **loader_args)
    # A bar only where someone watches it: redirected to a file, the one line per epoch (EpochLog) is the log.
    show_bar = tc.progress_bar and sys.stderr.isatty()
    # Each refresh reads the loss back from the device: a host-device sync. Not every step on a GPU.
    progress = [TQDMProgressBar(refresh_rate=1 if tc.accelerator == "cpu" else 25)] if show_bar else []
    mode = monitor_mode(tc.monitor)
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, monitor=tc.monitor, mode=mode, save_top_k=1)
    # The best checkpoint before the last one (Lightning keeps their order): last.ckpt then holds the best's
    # state of this epoch, and a resumed run restores the right best file.
    trainer = make_trainer(tc, logger, tc.max_epochs, enable_progress_bar=show_bar, callbacks=[
        ResumableEarlyStopping(monitor=tc.monitor, mode=mode, patience=tc.patience), checkpoint,
        every_epoch_checkpoint(ckpt_dir), SeedEachEpoch(tc.seed), RankReport(ckpt_dir.parent),
        EpochLog(tc.max_epochs, tc.monitor, mode), *progress, *(callbacks or [])])
    trainer.fit(module, train_loader, val_loader, ckpt_path=resume_from(ckpt_dir, tc.max_epochs, resume, module),
                weights_only=True)
    best = float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else float("nan")
    module.epochs_trained = trainer.current_epoch
    if checkpoint.best_model_path:
        # Every DDP rank knows the best file's name (and so its epoch); rank 0 alone restores the weights.
        module.epochs_trained = int(re.search(r"epoch=(\d+)", Path(checkpoint.best_model_path).name)[1]) + 1
        if trainer.is_global_zero:
            saved = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
            module.load_state_dict(saved["state_dict"])
            log.info("restored epoch %d, the best of the %d run (%s = %.4f)", module.epochs_trained,
                     trainer.current_epoch, tc.monitor, best)
    return module, best


def fit_epochs(cfg: TrainRunConfig, module: SignalsModule, train_loader: DataLoader, logger, ckpt_dir: Path,
               callbacks: list | None, epochs: int, resume: bool) -> SignalsModule:
    """Exactly `epochs` epochs without validation (the refit: the epoch count was chosen on validation)."""
    refit_dir = ckpt_dir / REFIT
    trainer = make_trainer(cfg.train, logger, epochs, enable_progress_bar=False, limit_val_batches=0, callbacks=[
        every_epoch_checkpoint(refit_dir), SeedEachEpoch(cfg.train.seed), RankReport(ckpt_dir.parent),
        EpochLog(epochs, "train_loss", "min"), *(callbacks or [])])
    trainer.fit(module, train_loader, ckpt_path=resume_from(refit_dir, epochs, resume, module, "the refit"),
                weights_only=True)
    module.epochs_trained = epochs
    return module


def make_trainer(tc: TrainConfig, logger, max_epochs: int, **settings) -> L.Trainer:
    """The Trainer both fits use: devices, precision and determinism from `train`, plus their own `settings`."""
    return L.Trainer(max_epochs=max_epochs, accelerator=tc.accelerator, devices=tc.devices, num_nodes=tc.num_nodes,
                     strategy=tc.strategy, precision=tc.precision, logger=logger,
                     limit_train_batches=tc.limit_train_batches, deterministic=tc.deterministic,
                     log_every_n_steps=10, num_sanity_val_steps=0, enable_model_summary=False,
                     plugins=[AtomicCheckpointIO()], **settings)


def training_threads(setting: int) -> int:
    return setting if setting > 0 else max(1, len(os.sched_getaffinity(0)) // 2)


def monitor_mode(monitor: str) -> str:
    return "min" if "loss" in monitor else "max"
