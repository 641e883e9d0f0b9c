"""Read a canonical events table back (what training code calls), and write one made by code."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from events.errors import UserFacingError
from events.loaders.report import REPORT_FILE, LoadReport
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


def write_events(events: pd.DataFrame, folder: Path, source: str = "canonical") -> Path:
    """Write a canonical DataFrame made by code (a test, a benchmark's adapter) as a finished load:
    `events.parquet` in the canonical schema, then the load report that marks the folder finished."""
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(events, schema=CANONICAL_SCHEMA, preserve_index=False), folder / EVENTS_FILE)
    return mark_finished(events, folder, source)


def mark_finished(events: pd.DataFrame, folder: Path, source: str = "canonical") -> Path:
    """The report `signals load` writes last, for `events` already written in `folder` by other means."""
    LoadReport(format=source, inputs=[], out_dir=str(folder), rows_read=len(events), rows_accepted=len(events),
               rows_rejected=0, rejected_by_reason={}, users=int(events["user_id"].nunique()),
               sessions=int(events["session_id"].nunique()), products=int(events["product_id"].nunique()),
               event_types={str(k): int(v) for k, v in events["event_type"].value_counts().items()},
               ts_min=None, ts_max=None, session_gap_minutes=None).write(folder / REPORT_FILE)
    return folder
