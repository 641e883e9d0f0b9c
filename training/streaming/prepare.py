"""`StreamingData`: the out-of-core implementation of `training.training_data.TrainingData`.

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

import mlflow
import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as ds

from events.errors import UserFacingError
from events.partitions import Manifest, SourceFile, auto_partitions, count_rows, partition_path, repartition
from events.source import GENERATED, DatasetSource, dataset_files
from models.encoding import EventEncoder
from models.network import SessionSignalsModel
from training.comparison import format_table
from training.config import TrainRunConfig
from training.labels import TEST, TRAIN, VAL, split_dates
from training.streaming.dataset import StreamContext, StreamingWindows, count_windows
from training.streaming.encoder_counts import stream_counts
from training.streaming.streamed_test import StreamedTest, evaluate_streaming
from training.training_data import TrainingData, model_config

log = logging.getLogger(__name__)


@dataclass
class StreamingData(TrainingData):
    manifest: Manifest | None = None
    folder: Path | None = None  # the partition files
    ctx: StreamContext | None = None
    test: StreamedTest | None = None  # filled by `evaluate`
    test_metrics: dict[str, float] | None = None  # the model's, from `evaluate` (intervals are not free)

    def lineage_counts(self) -> dict[str, int]:
        return {"events": self.manifest.n_rows, "partitions": self.manifest.n_partitions}

    def evaluate(self, model: SessionSignalsModel) -> dict[str, float]:
        self.test = evaluate_streaming(model, self.ctx)
        self.test_metrics = self.test.metrics()
        return self.test_metrics

    def base_rates(self) -> dict[str, float]:
        assert self.test is not None, "base rates of a streamed run are counted by its test pass (evaluate)"
        return self.test.base_rates()

    def compare(self) -> dict[str, dict[str, float]]:
        log.info("baselines and oracle skipped: they need the whole table in memory (data.streaming=true)")
        return {}

    def log_to_parent(self) -> str:
        metrics = {"model": self.test_metrics}
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics["model"].items()})
        table = format_table(metrics, self.test.next_dropped_unseen)
        mlflow.log_text(table, "comparison.md")
        return table


def partition_sources(cfg: TrainRunConfig) -> tuple[str, Path, list[SourceFile], str, pd.Timestamp | None]:
    """(name, data folder, source files, sha256 for lineage, test start when a separate test file fixes it)."""
    name, folder, main, test, sha = dataset_files(cfg.data, cfg.labels.churn_horizon_days)
    if test is None:
        return name, folder, [SourceFile.of(main)], sha, None
    test_start = pd.Timestamp(pc.min(ds.dataset(test, format="parquet").to_table(columns=["ts"]).column("ts")).as_py())
    return name, folder, [SourceFile.of(main, test_start), SourceFile.of(test)], sha, test_start


def n_partitions(cfg: TrainRunConfig, n_rows: int) -> int:
    d, t = cfg.data, cfg.train
    shards = t.devices * t.num_nodes * max(t.num_workers, 1)
    k = d.partitions if d.partitions > 0 else max(auto_partitions(n_rows, d.partition_events), shards)
    if k < shards:
        raise UserFacingError(
            f"data.partitions={k} is fewer than the {shards} readers (train.devices x train.num_nodes x "
            f"train.num_workers): some would get no data; raise data.partitions or set it to 0 (auto)")
    return k


def prepare_streaming(cfg: TrainRunConfig) -> StreamingData:
    name, path, sources, sha, test_start = partition_sources(cfg)
    k = n_partitions(cfg, count_rows([Path(s.path) for s in sources]))
    folder = Path(cfg.data.partition_dir) if cfg.data.partition_dir else GENERATED / "partitions" / f"{name}-{sha[:12]}-k{k}"
    manifest = repartition(sources, folder, k)
    start, end = manifest.ts_range()
    dates = split_dates(pd.DataFrame({"ts": [start, end]}), cfg.split, test_start)
    files = [partition_path(folder, i) for i in range(k)]
    counts = stream_counts(files, dates.val_start)
    encoder = EventEncoder.from_counts(counts, min_count=cfg.labels.min_count)
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
    return StreamingData(source, dates, counts, encoder, datasets, model_config(cfg, encoder), kind="streaming",
                         manifest=manifest, folder=folder, ctx=ctx)
