"""Windows of one split, streamed partition by partition as a torch `IterableDataset`.

Each partition holds whole user timelines, so `make_labels` -> `encoder.encode` -> `build_split` ->
`WindowDataset` on one partition gives exactly that partition's share of the in-memory windows and
labels. Only one partition per DataLoader worker is in memory at a time.

Sharding: every (DDP rank, DataLoader worker) pair is one shard; shard s of S reads partitions
order[s::S], where `order` is a seeded permutation of the partitions that changes every epoch (or the
natural order when not shuffling). Each partition is read by exactly one shard per epoch. Windows are
shuffled within their partition with a generator seeded by (seed, epoch, partition), and yielded as
whole batches gathered with array indexing (`WindowDataset.__getitems__`); a partition's last partial
batch is completed from the next partition.

Under DDP every rank must run the same number of optimizer steps, or the gradient all-reduce hangs on
the rank that has one more batch. With `windows_per_partition` given (counted once before training),
every shard yields the same number of whole batches per epoch: the smallest shard's share rounded
down to the batch size; the few windows over it are skipped that epoch (other windows the next, since
the assignment changes).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import torch
from torch.utils.data import IterableDataset, get_worker_info

from models.encoding import EventEncoder
from training.config import LabelConfig
from training.labels import Labels, SplitDates, make_labels
from training.windows import WindowDataset, build_split, concat_batches

log = logging.getLogger(__name__)


@dataclass
class StreamContext:
    """What it takes to turn one partition file into labelled, encoded windows."""
    files: list[Path]
    dates: SplitDates
    label_cfg: LabelConfig
    encoder: EventEncoder
    window: int


@dataclass
class PartitionSplit:
    labels: Labels
    encoded: dict[str, np.ndarray]
    dataset: WindowDataset


def read_partition(path: Path) -> pd.DataFrame:
    """Canonical events of one partition, read as the in-memory path reads events.parquet."""
    return pd.read_parquet(path)


def partition_split(ctx: StreamContext, k: int, split: int) -> PartitionSplit:
    labels = make_labels(read_partition(ctx.files[k]), ctx.dates, ctx.label_cfg)
    encoded = ctx.encoder.encode(labels.events)
    arrays = build_split(labels, encoded, split, ctx.window)
    return PartitionSplit(labels, encoded, WindowDataset(arrays, ctx.window))


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of this process: torch.distributed when initialised, else the launcher's env."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def partition_order(n_partitions: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    if not shuffle:
        return np.arange(n_partitions)
    return np.random.default_rng([seed, epoch]).permutation(n_partitions)


def shard_partitions(n_partitions: int, shard: int, n_shards: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    return partition_order(n_partitions, seed, epoch, shuffle)[shard::n_shards]


class StreamingWindows(IterableDataset):
    """Windows of `split` over all partitions; see the module docstring for sharding and shuffling."""

    def __init__(self, ctx: StreamContext, split: int, shuffle: bool = False, seed: int = 0,
                 windows_per_partition: list[int] | None = None, batch_size: int = 1,
                 rank: int | None = None, world_size: int | None = None):
        super().__init__()
        self.ctx = ctx
        self.split = split
        self.shuffle = shuffle
        self.seed = seed
        self.windows_per_partition = windows_per_partition
        self.batch_size = max(int(batch_size), 1)
        self.rank, self.world_size = rank, world_size
        self.epoch = 0  # advanced by every __iter__ (workers are persistent: each keeps its own count)
        self.read_log: list[int] = []  # partitions this copy has read (for tests and reports)

    @property
    def n_partitions(self) -> int:
        return len(self.ctx.files)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard(self) -> tuple[int, int]:
        """(this shard, number of shards) over DDP ranks x DataLoader workers."""
        rank, world = distributed_rank()
        rank = self.rank if self.rank is not None else rank
        world = self.world_size if self.world_size is not None else world
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * n_workers + worker, world * n_workers

    def shard_cap(self, epoch: int, n_shards: int) -> int | None:
        """Windows every shard yields this epoch so that all ranks run the same number of whole batches."""
        if self.windows_per_partition is None:
            return None
        order = partition_order(self.n_partitions, self.seed, epoch, self.shuffle)
        counts = np.asarray(self.windows_per_partition, dtype=np.int64)
        per_shard = [int(counts[order[s::n_shards]].sum()) for s in range(n_shards)]
        return (min(per_shard) // self.batch_size) * self.batch_size

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of `batch_size` windows, gathered at once (the DataLoader takes them with batch_size=None)."""
        epoch = self.epoch
        self.epoch += 1
        shard, n_shards = self.shard()
        cap = self.shard_cap(epoch, n_shards)
        left = cap
        pending, filled = [], 0  # gathered parts of the batch being filled
        for k in shard_partitions(self.n_partitions, shard, n_shards, self.seed, epoch, self.shuffle):
            if left is not None and left <= 0:
                break
            self.read_log.append(int(k))
            ds = partition_split(self.ctx, int(k), self.split).dataset
            idx = (np.random.default_rng([self.seed, epoch, int(k)]).permutation(len(ds)) if self.shuffle
                   else np.arange(len(ds)))
            if left is not None:
                idx = idx[:left]
                left -= len(idx)
            start = 0
            while start < len(idx):  # whole batches, the last of a partition completed from the next one
                take = idx[start:start + self.batch_size - filled]
                pending.append(ds.__getitems__(take.tolist()))
                filled += len(take)
                start += len(take)
                if filled == self.batch_size:
                    yield concat_batches(pending)
                    pending, filled = [], 0
            del ds
        if pending:
            yield concat_batches(pending)


def count_windows(ctx: StreamContext, split: int) -> list[int]:
    """Labelled windows of `split` per partition (one pass; used to even out DDP ranks)."""
    return [len(partition_split(ctx, k, split).dataset) for k in range(len(ctx.files))]
