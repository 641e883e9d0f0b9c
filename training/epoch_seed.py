"""Every epoch's randomness is a function of (seed, epoch): the order of the training windows and the global
generators (dropout, sampled negatives). A run resumed from the checkpoint of epoch N therefore draws in
epoch N+1 exactly what the uninterrupted run drew, with no generator state in the checkpoint to save or load.
"""
from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch
from torch.utils.data import IterableDataset, RandomSampler


def epoch_seed(seed: int, epoch: int) -> int:
    """A 32-bit seed mixed from (seed, epoch): neighbouring epochs (and seeds) get unrelated streams."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class EpochShuffle(RandomSampler):
    """A fresh permutation of the windows every epoch, drawn from (seed, epoch) alone; Lightning calls
    `set_epoch` before each epoch. A RandomSampler, so that under DDP Lightning swaps in its own
    DistributedSampler, which is seeded the same way (the run's seed and `set_epoch`)."""

    def __init__(self, data_source, seed: int):
        super().__init__(data_source, generator=torch.Generator())
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator.manual_seed(epoch_seed(self.seed, self.epoch))
        return super().__iter__()


class SeedEachEpoch(L.Callback):
    """Reseed the global generators at the start of every epoch, and start a streamed training set at the
    epoch the trainer is at (a resumed run does not begin at epoch 0)."""

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_start(self, trainer, pl_module) -> None:
        dataset = getattr(trainer.train_dataloader, "dataset", None)
        if isinstance(dataset, IterableDataset) and hasattr(dataset, "set_epoch"):
            # Before the first batch: DataLoader workers (persistent) copy the dataset when they start.
            dataset.set_epoch(trainer.current_epoch)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        seed = epoch_seed(self.seed, trainer.current_epoch)
        torch.manual_seed(seed)  # also every CUDA device
        np.random.seed(seed)
        random.seed(seed)
