"""The files `signals score` writes: their schema, streamed writers, and the atomic output folder.

The folder is built beside `--out` under a temporary name and renamed into place when every file and
`report.json` (written last) are there: a killed run leaves the earlier output whole, never a half-written
folder that looks finished.
"""
from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CUSTOMERS_FILE = "customers.parquet"
AUDIENCE_FOLDER = "audiences"
REPORT_FILE = "report.json"

_TS = pa.timestamp("us", tz="UTC")
_LIST = pa.list_(pa.string())
CUSTOMER_SCHEMA = pa.schema([
    ("user_id", pa.string()), ("as_of", _TS), ("events", pa.int64()), ("last_event_ts", _TS),
    ("days_since_last_event", pa.float64()), ("session_live", pa.bool_()), ("latest_session_id", pa.string()),
    ("purchase_intent", pa.float64()), ("churn_risk", pa.float64()), ("uplift", pa.float64()),
    ("orders", pa.int64()), ("spend", pa.float64()), ("last_purchase_ts", _TS), ("days_since_last_purchase", pa.float64()),
    ("r_score", pa.int64()), ("f_score", pa.int64()), ("m_score", pa.int64()), ("rfm_segment", pa.string()),
    ("purchased_categories", _LIST), ("top_products", _LIST), ("top_product_scores", pa.list_(pa.float64())),
    ("top_categories", _LIST), ("top_brands", _LIST), ("segments", _LIST), ("cart_products", _LIST),
    ("session_views", pa.int64()), ("session_viewed_products", _LIST), ("browsing_category", pa.string()),
    ("category_best_sellers", _LIST), ("cross_sell_products", _LIST), ("audiences", _LIST),
    ("model_name", pa.string()), ("model_version", pa.string()), ("model_run_id", pa.string()),
])
LOOKALIKE_SCHEMA = pa.schema([("user_id", pa.string()), ("similarity", pa.float64()), ("nearest_seed", pa.string())])


@contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """Yields the folder to write into; on success it replaces `out` (an earlier output) in one rename."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


class TableFile:
    """One Parquet file appended frame by frame, plus (optionally) a CSV of its user ids for ad platforms."""

    def __init__(self, path: Path, schema: pa.Schema, ids_csv: bool = False):
        self.path, self.schema, self.rows = path, schema, 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = pq.ParquetWriter(path, schema)
        self.csv = path.with_suffix(".csv").open("w", newline="") if ids_csv else None
        if self.csv:
            csv.writer(self.csv).writerow(["user_id"])

    def append(self, frame: pd.DataFrame) -> None:
        if not len(frame):
            return
        self.writer.write_table(pa.Table.from_pandas(frame[self.schema.names], schema=self.schema, preserve_index=False))
        if self.csv:
            csv.writer(self.csv).writerows([u] for u in frame["user_id"])
        self.rows += len(frame)

    def close(self) -> None:
        self.writer.close()
        if self.csv:
            self.csv.close()


def audience_file(folder: Path, name: str, fields: tuple[str, ...], schema: pa.Schema = CUSTOMER_SCHEMA) -> TableFile:
    return TableFile(folder / AUDIENCE_FOLDER / f"{name}.parquet",
                     pa.schema([schema.field(f) for f in ("user_id", *fields)]), ids_csv=True)
