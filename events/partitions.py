"""Repartition canonical events by a stable hash of user_id into K Parquet files.

Every user's whole timeline lands in one partition, so labels (which are per user) computed on one
partition are exactly the labels computed on the whole table. The source is scanned in record batches
(pyarrow, one row group decoded at a time); memory stays bounded by the batch size plus one small buffer per partition,
whatever the file's size.

The hash is `pandas.util.hash_array` (SipHash with a fixed key) of the user id string: the same user
goes to the same partition on every run and every machine. A manifest (manifest.json) records the
source files (size and modification time), K and per-partition row counts and time ranges; a folder
whose manifest matches is reused instead of being rewritten.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from events.schema import CANONICAL_COLUMNS, CANONICAL_SCHEMA

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
SCAN_BATCH_ROWS = 1 << 19  # rows per scanned record batch (about 40 MB of canonical events)
ROW_GROUP_ROWS = 1 << 17  # rows buffered per partition before a row group is written
MAX_BUFFERED_ROWS = 1 << 20  # rows buffered over all partitions (about 100 MB), whatever K


@dataclass
class SourceFile:
    """One input file, and an optional upper bound on ts (events at or after it are dropped)."""
    path: str
    ts_before: str | None = None  # ISO timestamp; None keeps every row
    size: int = 0
    mtime_ns: int = 0

    @classmethod
    def of(cls, path: Path, ts_before: pd.Timestamp | None = None) -> "SourceFile":
        st = Path(path).stat()
        return cls(str(Path(path).resolve()), None if ts_before is None else str(ts_before), st.st_size,
                   st.st_mtime_ns)


@dataclass
class Manifest:
    n_partitions: int
    sources: list[SourceFile]
    rows: list[int] = field(default_factory=list)  # rows per partition
    ts_min: list[int | None] = field(default_factory=list)  # per partition, microseconds since epoch (UTC)
    ts_max: list[int | None] = field(default_factory=list)
    version: int = FORMAT_VERSION

    @property
    def n_rows(self) -> int:
        return int(sum(self.rows))

    def ts_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        lo = [t for t in self.ts_min if t is not None]
        hi = [t for t in self.ts_max if t is not None]
        if not lo:
            raise ValueError("no events in any partition")
        return (pd.Timestamp(min(lo), unit="us", tz="UTC"), pd.Timestamp(max(hi), unit="us", tz="UTC"))

    def same_input(self, other: "Manifest") -> bool:
        key = lambda m: (m.version, m.n_partitions, [(s.path, s.ts_before, s.size, s.mtime_ns) for s in m.sources])
        return key(self) == key(other)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        d = json.loads(text)
        d["sources"] = [SourceFile(**s) for s in d["sources"]]
        return cls(**d)


def partition_path(folder: Path, k: int) -> Path:
    return Path(folder) / f"part-{k:05d}.parquet"


def partition_of(user_ids: pa.Array | pa.ChunkedArray, n_partitions: int) -> np.ndarray:
    """(N,) int64 partition of each user id: stable SipHash of the string, modulo K.

    Only the batch's distinct ids are hashed (a batch of a file sorted by user holds few of them)."""
    if isinstance(user_ids, pa.ChunkedArray):
        user_ids = user_ids.combine_chunks()
    encoded = pc.dictionary_encode(user_ids)
    values = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    hashes = pd.util.hash_array(values, categorize=False)  # uint64, fixed key: stable across runs
    per_value = (hashes % np.uint64(n_partitions)).astype(np.int64)
    return per_value[encoded.indices.to_numpy(zero_copy_only=False)]


def auto_partitions(n_rows: int, events_per_partition: int) -> int:
    return max(1, math.ceil(n_rows / max(events_per_partition, 1)))


def count_rows(files: list[Path]) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def iter_batches(path: Path, columns: list[str], batch_rows: int):
    """Record batches of `columns` in file order, one row group decoded at a time.

    Not `ParquetFile.iter_batches`: with pyarrow 25 its Arrow memory grew by about 7 MB per batch over a
    whole file (300 MB held after reading a 20M-event file). Nor the threaded `pyarrow.dataset` scanner:
    it reads ahead of a slow consumer without bound on a single file (1.3 GB seen on the same file).
    Reading row group by row group stays at one row group's worth, whatever the file's size.
    """
    pf = pq.ParquetFile(path)
    for i in range(pf.metadata.num_row_groups):
        table = pf.read_row_group(i, columns=columns)
        yield from table.to_batches(max_chunksize=batch_rows)
        del table


def scan(path: Path, ts_before: str | None, batch_rows: int):
    """Canonical record batches of one source file, optionally only rows with ts < ts_before."""
    cutoff = None if ts_before is None else pa.scalar(pd.Timestamp(ts_before), CANONICAL_SCHEMA.field("ts").type)
    for batch in iter_batches(path, list(CANONICAL_COLUMNS), batch_rows):
        if cutoff is not None:
            batch = batch.filter(pc.less(batch.column("ts"), cutoff))
        yield batch


def repartition(sources: list[SourceFile], out_dir: Path, n_partitions: int,
                scan_batch_rows: int = SCAN_BATCH_ROWS, row_group_rows: int = ROW_GROUP_ROWS,
                max_buffered_rows: int = MAX_BUFFERED_ROWS) -> Manifest:
    """Write `out_dir/part-XXXXX.parquet` (K files) from `sources`, or reuse them if the manifest matches.

    Rows keep their source order inside each partition (sources in the order given), so a partition of
    a file sorted by user then time is sorted the same way.
    """
    out_dir = Path(out_dir)
    wanted = Manifest(n_partitions, sources)
    if (out_dir / MANIFEST).is_file():
        existing = Manifest.from_json((out_dir / MANIFEST).read_text())
        if existing.same_input(wanted) and all(partition_path(out_dir, k).is_file() for k in range(n_partitions)):
            log.info("reusing %d partitions in %s", n_partitions, out_dir)
            return existing
    tmp = out_dir.with_name(out_dir.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    writers: list[pq.ParquetWriter | None] = [None] * n_partitions
    buffers: list[list[pa.Table]] = [[] for _ in range(n_partitions)]
    buffered = np.zeros(n_partitions, dtype=np.int64)
    rows = np.zeros(n_partitions, dtype=np.int64)
    ts_min: list[int | None] = [None] * n_partitions
    ts_max: list[int | None] = [None] * n_partitions

    def flush(k: int) -> None:
        if not buffers[k]:
            return
        table = pa.concat_tables(buffers[k])
        if writers[k] is None:
            writers[k] = pq.ParquetWriter(partition_path(tmp, k), CANONICAL_SCHEMA)
        writers[k].write_table(table)
        buffers[k].clear()
        buffered[k] = 0

    try:
        for source in sources:
            for batch in scan(Path(source.path), source.ts_before, scan_batch_rows):
                if batch.num_rows == 0:
                    continue
                table = pa.Table.from_batches([batch]).cast(CANONICAL_SCHEMA)
                part = partition_of(table.column("user_id"), n_partitions)
                order = np.argsort(part, kind="stable")  # group rows by partition, source order kept within
                bounds = np.searchsorted(part[order], np.arange(n_partitions + 1))
                ts_us = table.column("ts").cast(pa.int64()).to_numpy()
                for k in np.flatnonzero(np.diff(bounds)):
                    idx = order[bounds[k]:bounds[k + 1]]
                    buffers[k].append(table.take(pa.array(idx)))
                    buffered[k] += len(idx)
                    rows[k] += len(idx)
                    lo, hi = int(ts_us[idx].min()), int(ts_us[idx].max())
                    ts_min[k] = lo if ts_min[k] is None else min(ts_min[k], lo)
                    ts_max[k] = hi if ts_max[k] is None else max(ts_max[k], hi)
                    if buffered[k] >= row_group_rows:
                        flush(k)
                # Bound the buffers together too, so that memory does not grow with K (auto K grows with the data).
                while buffered.sum() > max_buffered_rows:
                    flush(int(np.argmax(buffered)))
        for k in range(n_partitions):
            flush(k)
            if writers[k] is None:  # an empty partition still gets a (valid, empty) file
                writers[k] = pq.ParquetWriter(partition_path(tmp, k), CANONICAL_SCHEMA)
    finally:
        for w in writers:
            if w is not None:
                w.close()
    manifest = Manifest(n_partitions, sources, rows.tolist(), ts_min, ts_max)
    (tmp / MANIFEST).write_text(manifest.to_json())
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out_dir)
    log.info("repartitioned %d events into %d partitions in %s", manifest.n_rows, n_partitions, out_dir)
    return manifest
