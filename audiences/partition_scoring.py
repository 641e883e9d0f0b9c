"""The user partitions scored one after another in this process, or `scoring.workers` at a time in worker
processes (each loads the engine once and scores whole partitions; memory: about one partition per worker).

Each partition becomes a part file of customer rows plus the counts the driver needs; results come back in
partition order, so the output files do not depend on the number of workers.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import pandas as pd

from audiences.config import AudienceConfig
from audiences.customer_rows import score_partition
from audiences.event_table import read_partition
from serving.api_types import ModelIdentity
from serving.engine import SignalsEngine
from serving.segments import SegmentRules


@dataclass
class ScoredPart:
    path: Path  # the partition's customer rows (Parquet)
    customers: int
    without_events: int  # customers whose every event lies after as_of
    purchases: pd.DataFrame  # category, product_id, purchases of the best-seller window


@dataclass(frozen=True)
class EngineSource:
    bundle: Path
    identity: ModelIdentity
    rules: SegmentRules  # the endpoint's segment labels
    trends: Path | None = None  # the trends table the `trending` list reads (`signals trends`)

    def load(self) -> SignalsEngine:
        return SignalsEngine.from_bundle(self.bundle, self.identity, self.rules, self.trends)


def score_partitions(files: list[Path], parts: list[Path], as_of: pd.Timestamp, cfg: AudienceConfig,
                     source: EngineSource, lists: dict[str, int] | None = None) -> Iterator[ScoredPart]:
    """Partition files[k] scored into parts[k], yielded in order; lists: as in `score_partition`."""
    workers = min(cfg.scoring.workers, len(files))
    if workers == 1:
        engine = source.load()
        for file, part in zip(files, parts):
            yield score_file(engine, file, part, as_of, cfg, lists)
        return
    # spawn, not fork: a forked copy of a process that has started torch's thread pools can hang.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                             initargs=(source,)) as pool:
        yield from pool.map(_score_in_worker, files, parts, repeat(as_of), repeat(cfg), repeat(lists))


def score_file(engine: SignalsEngine, file: Path, part: Path, as_of: pd.Timestamp, cfg: AudienceConfig,
               lists: dict[str, int] | None = None) -> ScoredPart:
    result = score_partition(read_partition(file), as_of, engine, cfg, lists)
    result.customers.to_parquet(part, index=False)
    return ScoredPart(part, len(result.customers), result.without_events, result.purchases)


_engine: SignalsEngine | None = None  # a worker process's engine, loaded once


def _start_worker(source: EngineSource) -> None:
    import torch

    global _engine
    torch.set_num_threads(1)  # the workers are the parallelism: one thread each, no oversubscription
    _engine = source.load()


def _score_in_worker(file: Path, part: Path, as_of: pd.Timestamp, cfg: AudienceConfig,
                     lists: dict[str, int] | None) -> ScoredPart:
    return score_file(_engine, file, part, as_of, cfg, lists)
