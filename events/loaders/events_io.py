"""Read a canonical events table back (what training code calls)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from events.errors import UserFacingError
from events.schema import CANONICAL_SCHEMA, EVENTS_FILE


def read_events(dir_or_file: Path | str, columns: list[str] | None = None) -> pd.DataFrame:
    """The events of a load directory (or an events.parquet file) as a DataFrame, ts as UTC datetimes."""
    path = Path(dir_or_file)
    if path.is_dir():
        path = path / EVENTS_FILE
    if not path.is_file():
        raise UserFacingError(f"{path}: no events file (run `signals load` or `signals simulate` first)")
    try:
        table = pq.read_table(path, columns=columns)
    except (pa.ArrowInvalid, OSError) as err:
        raise UserFacingError(f"{path}: cannot read as Parquet: {err}") from None
    expected = CANONICAL_SCHEMA if columns is None else pa.schema([CANONICAL_SCHEMA.field(c) for c in columns])
    if not table.schema.equals(expected):
        raise UserFacingError(f"{path}: not a canonical events table; its schema is {table.schema}")
    return table.to_pandas()
