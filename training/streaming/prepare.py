"""`prepare_streaming(cfg)`: the out-of-core counterpart of `training.fitting.prepare`.

1. repartition the events by user hash into K Parquet files (reused when unchanged);
2. split dates from the per-partition ts min/max recorded while repartitioning (no extra pass);
3. one streamed pass over the training window (ts < val_start) for the encoder and the popularity
   proposal (log Q of the sampled softmax);
4. one `StreamingWindows` per split; under DDP a counting pass first, so ranks stay in step.
Peak memory: one scanned batch (repartition), O(catalogue) counts (encoder), then one partition per
DataLoader worker (training), whatever the number of events.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.encoding import EventEncoder
from training.config import TrainConfig
from training.dataset_source import GENERATED, DatasetSource, file_sha256, simulated_dataset
from training.errors import UserFacingError
from training.labels import TEST, TRAIN, VAL, SplitDates, split_dates
from training.schema import EVENTS_FILE
from training.streaming.dataset import StreamContext, StreamingWindows, count_windows
from training.streaming.encoder_fit import StreamedCounts, stream_counts
from training.streaming.partitions import (
    Manifest, SourceFile, auto_partitions, count_rows, partition_path, repartition,
)

log = logging.getLogger(__name__)


@dataclass
class StreamingData:
    source: DatasetSource  # events is an empty frame: the data never sits in memory
    manifest: Manifest
    folder: Path
    dates: SplitDates
    counts: StreamedCounts
    encoder: EventEncoder
    ctx: StreamContext
    datasets: dict[int, StreamingWindows]

    def log_popularity(self) -> np.ndarray:
        """(P,) log share of each product in the training window (`training.fitting.popularity_log_prob`)."""
        return popularity_log_prob_from_counts(self.encoder, self.counts)


def events_file(path: Path) -> Path:
    file = path / EVENTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise UserFacingError(f"data.path: no {EVENTS_FILE} in {path} (make one with `signals load` or `signals simulate`)")
    return file


def partition_sources(cfg: TrainConfig) -> tuple[Path, list[SourceFile], str, pd.Timestamp | None]:
    """(data folder, source files, sha256 for lineage, test start when a separate test file fixes it)."""
    d = cfg.data
    path = Path(d.path) if d.path else simulated_dataset(d.simulate_events, d.simulate_seed)
    main = events_file(path)
    sha = file_sha256(main)
    if not d.test_path:
        return path, [SourceFile.of(main)], sha, None
    test = events_file(Path(d.test_path))
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    test_start = pd.Timestamp(pc.min(ds.dataset(test, format="parquet").to_table(columns=["ts"]).column("ts")).as_py())
    import hashlib
    sha = hashlib.sha256((sha + file_sha256(test)).encode()).hexdigest()
    return path, [SourceFile.of(main, test_start), SourceFile.of(test)], sha, test_start


def n_partitions(cfg: TrainConfig, n_rows: int) -> int:
    d, t = cfg.data, cfg.train
    shards = t.devices * t.num_nodes * max(t.num_workers, 1)
    k = d.partitions if d.partitions > 0 else max(auto_partitions(n_rows, d.partition_events), shards)
    if k < shards:
        raise UserFacingError(
            f"data.partitions={k} is fewer than the {shards} readers (train.devices x train.num_nodes x "
            f"train.num_workers): some would get no data; raise data.partitions or set it to 0 (auto)")
    return k


def prepare_streaming(cfg: TrainConfig) -> StreamingData:
    path, sources, sha, test_start = partition_sources(cfg)
    name = cfg.data.name or path.name
    k = n_partitions(cfg, count_rows([Path(s.path) for s in sources]))
    folder = Path(cfg.data.partition_dir) if cfg.data.partition_dir else GENERATED / "partitions" / f"{name}-{sha[:12]}-k{k}"
    manifest = repartition(sources, folder, k)
    start, end = manifest.ts_range()
    dates = split_dates(pd.DataFrame({"ts": [start, end]}), cfg.split, test_start)
    files = [partition_path(folder, i) for i in range(k)]
    counts = stream_counts(files, dates.val_start)
    encoder = counts.encoder(min_count=cfg.labels.min_count)
    ctx = StreamContext(files, dates, cfg.labels, encoder, cfg.model.max_len)
    world = cfg.train.devices * cfg.train.num_nodes
    per_partition = count_windows(ctx, TRAIN) if world > 1 else None
    datasets = {
        TRAIN: StreamingWindows(ctx, TRAIN, shuffle=True, seed=cfg.train.seed, windows_per_partition=per_partition,
                                batch_size=cfg.train.batch_size),
        VAL: StreamingWindows(ctx, VAL, batch_size=cfg.train.batch_size),
        TEST: StreamingWindows(ctx, TEST, batch_size=cfg.train.batch_size),
    }
    source = DatasetSource(name, path, pd.DataFrame(), sha, test_start)
    log.info("streaming %d events in %d partitions (%s); split %s; catalogue %d products", manifest.n_rows, k,
             folder, dates.to_dict(), len(encoder.products))
    return StreamingData(source, manifest, folder, dates, counts, encoder, ctx, datasets)


def popularity_log_prob_from_counts(encoder: EventEncoder, counts: StreamedCounts) -> np.ndarray:
    """`training.fitting.popularity_log_prob` from streamed counts (same smoothing, same reserved ids)."""
    c = StreamedCounts.id_counts(encoder.products, counts.products).astype(np.float64) + 1e-3
    c[:2] = 0.0
    with np.errstate(divide="ignore"):
        log_p = np.log(c / c.sum())
    return np.where(np.isfinite(log_p), log_p, -1e9)


def prior_from_counts(vocab, token_counts: pd.Series) -> list[float]:
    """`bundle_meta`'s category/brand prior: share per id among training events, PAD/UNK zeroed."""
    c = StreamedCounts.id_counts(vocab, token_counts).astype(np.float64)
    c[:2] = 0.0
    return (c / max(c.sum(), 1.0)).tolist()
