"""The checkpoints a fit writes and resumes from: where they live, `last.ckpt` after every epoch (written
whole or not at all), and the early stopping that a restart must not undo.

A checkpoint is Lightning's torch.save of tensors, numbers, strings and plain containers; it is loaded only
with `weights_only=True`, so a file holding anything else (a pickled object) is refused, never unpickled.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.plugins.io import TorchCheckpointIO

from events.errors import UserFacingError
from training.config import TrainRunConfig

log = logging.getLogger(__name__)

LAST = "last"  # the checkpoint written after every epoch: last.ckpt
REFIT = "refit"  # the refit's checkpoints, in their own folder under the run's


def checkpoint_dir(cfg: TrainRunConfig, run_id: str | None) -> Path:
    """Where `fit` keeps its checkpoints: under the model run's id, which is how a resumed run finds them.
    Under DDP every rank must name the same folder and only rank 0 has a run id, so a multi-process run
    uses `ddp/` (and does not resume); the other ranks pass run_id None."""
    multi = cfg.train.devices * cfg.train.num_nodes > 1
    return Path(cfg.output_dir) / ("ddp" if multi or run_id is None else run_id) / "checkpoints"


def every_epoch_checkpoint(dirpath: Path) -> ModelCheckpoint:
    """`last.ckpt`, replaced after every epoch: weights, optimiser, loop counters, early stopping and the
    best checkpoint's record (give it after the best's ModelCheckpoint: Lightning keeps their order)."""
    return ModelCheckpoint(dirpath=dirpath, filename=LAST, monitor=None, save_top_k=1, enable_version_counter=False)


def drop_resume_points(ckpt_dir: Path) -> None:
    """Delete the `last.ckpt` files of a finished run (the fit's and the refit's): a finished run is never
    resumed, and they would double the disk every run keeps. The best epoch's checkpoint stays."""
    for path in (ckpt_dir / f"{LAST}.ckpt", ckpt_dir / REFIT / f"{LAST}.ckpt"):
        path.unlink(missing_ok=True)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write beside the target, flush to disk, rename over it: a kill or a power cut mid-write leaves the
    previous epoch's checkpoint whole. (Lightning's own write goes through a temporary file in $TMPDIR,
    which is a copy, not a rename, when that is another file system, and is left behind by a kill.)"""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        with open(part, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, path)


def resume_from(ckpt_dir: Path, max_epochs: int, resume: bool, module: torch.nn.Module,
                what: str = "training") -> str | None:
    """The checkpoint to continue from (None: start at epoch 1), named in the log with its epoch. A file
    that cannot be read, or whose weights do not fit `module` (written by another version of the code),
    is a clear error rather than a traceback from inside Lightning."""
    path = ckpt_dir / f"{LAST}.ckpt"
    if not resume or not path.is_file():
        return None
    fresh = "start a new run with `signals train --fresh`"
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # mmap: weights read once, later
        epoch, weights = int(saved["epoch"]) + 1, saved["state_dict"]
    except Exception as exc:  # any unreadable file gets the same clear error
        raise UserFacingError(f"cannot read the checkpoint {path} to resume from ({exc}); {fresh}") from exc
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.items()}
    if found != expected:
        differ = sorted(set(found) ^ set(expected) | {k for k in set(found) & set(expected) if found[k] != expected[k]})
        raise UserFacingError(f"the checkpoint {path} does not fit this model (written by another version of the "
                              f"code?): {', '.join(differ[:5])}{' ...' if len(differ) > 5 else ''} differ; {fresh}")
    log.info("resuming %s from the checkpoint of epoch %d/%d (%s)", what, epoch, max_epochs, path)
    # Lightning warns of a checkpoint folder that is not empty: resuming, it is ours.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    return str(path)


class ResumableEarlyStopping(EarlyStopping):
    """Early stopping whose decision survives a restart. Lightning restores its counters but not the
    trainer's `should_stop`: restored from a checkpoint written after it fired, it would train one more
    epoch than the uninterrupted run."""

    def on_train_start(self, trainer, pl_module) -> None:
        if self.stopping_reason is not EarlyStoppingReason.NOT_STOPPED:
            trainer.should_stop = True
