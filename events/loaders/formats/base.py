"""What every format hands the pipeline: its input files, how to read them and how to extract fields."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from events.errors import UserFacingError
from events.loaders.parsed_chunk import ParsedChunk
from events.loaders.readers import CsvReader, ParquetReader


@dataclasses.dataclass
class SourceInput:
    """One input file: a chunked reader and the function that turns a raw chunk into candidate fields."""

    path: Path
    reader: CsvReader | ParquetReader
    extract: Callable[[pa.Table], ParsedChunk]


@dataclasses.dataclass
class Source:
    format_name: str
    inputs: list[SourceInput]
    has_session_ids: bool
    """False: sessions are cut by inactivity after validation."""
    event_types: dict[str, str] = dataclasses.field(default_factory=dict)
    """The format's own source -> canonical event-type mapping."""
    keep_extra_types: bool = False
    ts_min: datetime | None = None
    """The documented range of the data, where the format has one; options override it."""
    ts_max: datetime | None = None


def require_columns(reader: CsvReader | ParquetReader, needed: dict[str, str], origin: str) -> None:
    """Stop with a message naming the file and each missing column; `needed` maps column -> what it is for."""
    nested = [f"{column!r} (for {purpose}) is of type {reader.unreadable[column]}"
              for column, purpose in needed.items() if column in reader.unreadable]
    if nested:
        raise UserFacingError(f"{reader.path}: column {'; column '.join(nested)}: only columns of single values "
                              "(text, numbers, dates, times) can be loaded; flatten it or map another column")
    missing = [f"{column!r} (for {purpose})" for column, purpose in needed.items() if column not in reader.columns]
    if missing:
        raise UserFacingError(
            f"{reader.path}: {origin} needs column {', '.join(missing)}, which the file does not have; "
            f"its columns are: {', '.join(reader.columns)}"
        )
