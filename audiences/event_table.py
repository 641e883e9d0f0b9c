"""The table `signals score` reads: checked before any work, then streamed one user partition at a time.

A table larger than one partition is repartitioned by user hash (events/partitions.py, the one
partitioner), so each customer's whole timeline is in memory once and memory stays flat.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from events.errors import UserFacingError
from events.partitions import SourceFile, auto_partitions, partition_path, repartition
from events.schema import CANONICAL_SCHEMA
from events.source import events_file, file_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventTable:
    file: Path
    sha256: str
    rows: int
    ts_min: pd.Timestamp
    ts_max: pd.Timestamp

    @classmethod
    def open(cls, path: Path) -> EventTable:
        """A finished canonical table (folder or file), or a clear error naming what is wrong."""
        file = events_file(Path(path), "events")
        try:
            schema = pq.read_schema(file)
            meta = pq.ParquetFile(file).metadata
        except (pa.ArrowInvalid, OSError) as err:
            raise UserFacingError(f"{file}: cannot read as Parquet: {err}") from None
        wrong = [f"{f.name} ({f.type})" if f.name in schema.names else f"{f.name} (missing)"
                 for f in CANONICAL_SCHEMA if f.name not in schema.names or schema.field(f.name).type != f.type]
        if wrong:
            raise UserFacingError(f"{file}: not a canonical events table: wrong or missing column(s) {', '.join(wrong)}; "
                                  "make one with `signals load` or `signals simulate`")
        if meta.num_rows == 0:
            raise UserFacingError(f"{file}: no events")
        ts = pq.read_table(file, columns=["ts"]).column("ts")
        lo, hi = pc.min_max(ts).values()
        return cls(file, file_sha256(file), meta.num_rows, pd.Timestamp(lo.as_py()), pd.Timestamp(hi.as_py()))

    def check_as_of(self, as_of: pd.Timestamp) -> None:
        if as_of < self.ts_min:
            raise UserFacingError(f"--as-of {as_of.isoformat()} is before the data: the first event of {self.file} "
                                  f"is at {self.ts_min.isoformat()}")

    def partitions(self, events_per_partition: int, work: Path) -> Iterator[pd.DataFrame]:
        """Each partition's events, sorted by user then time (ties keep file order, as serving's stable sort)."""
        n = auto_partitions(self.rows, events_per_partition)
        if n == 1:
            files = [self.file]
        else:
            log.info("repartitioning %d events into %d user partitions", self.rows, n)
            repartition([SourceFile.of(self.file)], work / "partitions", n)
            files = [partition_path(work / "partitions", k) for k in range(n)]
        for file in files:
            table = pq.read_table(file, columns=list(CANONICAL_SCHEMA.names)).cast(CANONICAL_SCHEMA)
            yield table.to_pandas().sort_values(["user_id", "ts"], kind="stable", ignore_index=True)

    def n_partitions(self, events_per_partition: int) -> int:
        return auto_partitions(self.rows, events_per_partition)
