"""Chunked Parquet writers for the outputs: one row group per chunk, the file complete or absent.

A file is written under a `.partial` name and renamed when the load succeeds, so that a failed or
interrupted load never leaves a truncated events.parquet that looks finished.
"""
from __future__ import annotations

from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from events.loaders.parsed_chunk import Column
from events.loaders.readers import RawChunk

REJECTED_EXTRA = (
    pa.field("reason", pa.string(), nullable=False),
    pa.field("source_row", pa.int64(), nullable=False),  # 0-based data row of the input (header not counted)
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("raw_line", pa.string()),  # the text of a CSV row whose fields cannot be told apart
)


class ParquetSink:
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self._partial = path.with_name(path.name + ".partial")
        self._writer = pq.ParquetWriter(self._partial, schema)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(pa.Table.from_arrays([table.column(n) for n in self.schema.names],
                                                          schema=self.schema))

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._writer.close()
        if kind is None:
            self._partial.replace(self.path)
        else:
            self._partial.unlink(missing_ok=True)


def rejected_schema(source_columns: list[str]) -> pa.Schema:
    """Every source column as text (the union over all inputs), then reason, source_row, source_file, raw_line.

    A source column named like one of the last four is shadowed by it.
    """
    extra = {field.name for field in REJECTED_EXTRA}
    return pa.schema([pa.field(name, pa.string()) for name in source_columns if name not in extra]
                     + list(REJECTED_EXTRA))


def rejected_rows(chunk: RawChunk, rejected: Column, reasons: Column, source_file: str,
                  schema: pa.Schema) -> pa.Table:
    """The rejected rows of a raw chunk, in `schema`: original values as text, with reason and position."""
    rows = pc.indices_nonzero(rejected)
    taken = chunk.table.take(rows)
    columns = {name: pc.cast(taken.column(name), pa.string()) for name in taken.column_names}
    columns["reason"] = reasons
    columns["source_row"] = pc.take(pa.array(chunk.source_rows), rows)
    return _conform(columns, len(rows), source_file, schema)


def unreadable_rows(chunk: RawChunk, source_file: str, schema: pa.Schema) -> pa.Table:
    """The chunk's CSV rows that could not be split into fields, in `schema`, their text in raw_line."""
    columns = {
        "reason": pa.array([item.reason for item in chunk.unreadable], pa.string()),
        "source_row": pa.array([item.row for item in chunk.unreadable], pa.int64()),
        "raw_line": pa.array([item.text for item in chunk.unreadable], pa.string()),
    }
    return _conform(columns, len(chunk.unreadable), source_file, schema)


def _conform(columns: dict[str, Column], length: int, source_file: str, schema: pa.Schema) -> pa.Table:
    columns["source_file"] = pa.repeat(pa.scalar(source_file), length)
    return pa.Table.from_arrays(
        [columns[name] if name in columns else pa.nulls(length, pa.string()) for name in schema.names],
        schema=schema,
    )
