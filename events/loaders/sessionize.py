"""Sessions for sources without session ids: a new session starts after `gap` of inactivity per user.

A user's events may lie anywhere in a file (Taobao is grouped by user, a shop export is usually in time
order), so sessions cannot be cut chunk by chunk. Instead the accepted rows are partitioned by a hash of
the user id with pyarrow.dataset (every event of a user lands in the same partition), spilled to disk as
lz4-compressed Arrow files, and each partition, small enough for memory, is then sorted by user and time
and cut. Peak memory is one partition (at most about ROWS_PER_PARTITION rows) whatever the size of the
input; only a single user with more events than fit in memory would break that, and none of the known
datasets comes close. The spill takes about 40% of the CSV's size on disk, next to the output.

Session ids are `<user_id>:<n>`, n counting the user's sessions from 0 in time order: the same input
gives the same ids on every run. Events at the same instant keep their input order.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from events.partitions import partition_of
from events.schema import CANONICAL_SCHEMA

ROWS_PER_PARTITION = 500_000
_ORDER = "_seq"  # input order, to break ties between events at the same instant
_PARTITION = "_partition"

SESSIONLESS_SCHEMA = pa.schema(
    [pa.field(f.name, f.type) for f in CANONICAL_SCHEMA if f.name != "session_id"]
    + [pa.field(_ORDER, pa.int64()), pa.field(_PARTITION, pa.int32())]
)


def partition_count(size_hint_rows: int) -> int:
    return max(1, math.ceil(size_hint_rows / ROWS_PER_PARTITION))


def sessionized(tables: Iterable[pa.Table], gap_minutes: float, partitions: int,
                spill_dir: Path) -> Iterator[pa.Table]:
    """Canonical tables with session ids, one per partition, from accepted tables without them."""
    # Arrow IPC files: no encoding work either way, and many small batches stay cheap (as Parquet row groups
    # of a few hundred rows they made reading a partition slow)
    spill_format = ds.IpcFileFormat()
    ds.write_dataset(
        _with_partition(tables, partitions),
        spill_dir,
        schema=SESSIONLESS_SCHEMA,
        format=spill_format,
        file_options=spill_format.make_write_options(compression="lz4"),
        partitioning=ds.partitioning(pa.schema([SESSIONLESS_SCHEMA.field(_PARTITION)])),
        max_partitions=partitions,
    )
    if not spill_dir.exists():  # nothing was accepted
        return
    for partition_dir in sorted(spill_dir.iterdir(), key=lambda p: int(p.name)):
        yield cut_sessions(ds.dataset(partition_dir, format=spill_format).to_table(), gap_minutes)


def cut_sessions(table: pa.Table, gap_minutes: float) -> pa.Table:
    """Sort by user and time and number each user's sessions; returns exactly CANONICAL_SCHEMA."""
    table = table.sort_by([("user_id", "ascending"), ("ts", "ascending"), (_ORDER, "ascending")])
    users = table.column("user_id").combine_chunks()
    micros = table.column("ts").combine_chunks().cast(pa.int64()).to_numpy()
    new_user = np.ones(len(users), dtype=bool)
    new_user[1:] = pc.not_equal(users[1:], users[:-1]).to_numpy(zero_copy_only=False)
    new_session = new_user.copy()
    new_session[1:] |= np.diff(micros) >= round(gap_minutes * 60e6)
    session_index = np.cumsum(new_session) - 1
    first_of_user = np.maximum.accumulate(np.where(new_user, session_index, 0))
    number = pa.array(session_index - first_of_user).cast(pa.string())
    session_id = pc.binary_join_element_wise(users, number, ":")
    columns = [session_id if name == "session_id" else table.column(name) for name in CANONICAL_SCHEMA.names]
    return pa.Table.from_arrays(columns, schema=CANONICAL_SCHEMA)


def _with_partition(tables: Iterable[pa.Table], partitions: int) -> Iterator[pa.RecordBatch]:
    seen = 0
    for table in tables:
        order = pa.array(np.arange(seen, seen + table.num_rows, dtype=np.int64))
        seen += table.num_rows
        table = table.append_column(_ORDER, order).append_column(
            _PARTITION, pa.array(partition_of(table.column("user_id"), partitions).astype(np.int32)))
        yield from table.cast(SESSIONLESS_SCHEMA).to_batches()
