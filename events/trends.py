"""Trends tables: the most bought (or viewed) products of the last N days, per category, per brand and
shop-wide, with the moment they are as of. `signals trends` writes one; the service reads it
(serving/lists/trending.py) and picks a newer one up without a restart.

One Parquet file, `trends.parquet`, whose schema metadata holds the as-of, the window and the ranking:
a single file replaced atomically, so a reader never sees a table and the metadata of another.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from events.errors import UserFacingError

TRENDS_FILE = "trends.parquet"
RANK_BY = ("purchases", "views")
SCOPES = ("category", "brand", "shop")
DEPTH = 100
"""Products kept per category, brand and the shop: a list asks for at most a few dozen after filters."""
COLUMNS = ("scope", "key", "rank", "product_id", "category", "brand", "price", "purchases", "views")
_METADATA_KEY = b"session_signals_trends"


@dataclass(frozen=True)
class TrendsInfo:
    as_of: pd.Timestamp  # events strictly before it were counted
    days: float  # ... and at or after as_of - days
    by: str  # "purchases" or "views": the ranking (the other count breaks ties)
    events: int  # events in the window

    def to_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "days": self.days, "by": self.by, "events": self.events}


def compute_trends(events: pd.DataFrame, days: float, by: str = "purchases",
                   as_of: pd.Timestamp | None = None) -> tuple[pd.DataFrame, TrendsInfo]:
    """Canonical events -> the table (COLUMNS; rank 1 = best of its scope and key) and its info.

    as_of defaults to just after the last event, so the last event counts. A product's category, brand and
    price are the latest seen in the window; products with none of the ranking's events are left out."""
    if by not in RANK_BY:
        raise UserFacingError(f"--by must be one of {', '.join(RANK_BY)}, not {by!r}")
    if not days > 0:
        raise UserFacingError(f"--days must be positive, not {days}")
    if as_of is None:
        as_of = events["ts"].max() + pd.Timedelta(microseconds=1) if len(events) else pd.Timestamp.now(tz="UTC")
    window = events[(events["ts"] >= as_of - pd.Timedelta(days=days)) & (events["ts"] < as_of)]
    window = window.sort_values("ts", kind="stable")
    kind = window["event_type"]
    products = window.groupby("product_id", sort=True).agg(
        category=("category", "last"), brand=("brand", "last"), price=("price", "last"))
    products["purchases"] = (kind == "purchase").groupby(window["product_id"]).sum().astype(np.int64)
    products["views"] = (kind == "view").groupby(window["product_id"]).sum().astype(np.int64)
    other = "views" if by == "purchases" else "purchases"
    ranked = products[products[by] > 0].reset_index()
    ranked = ranked.sort_values([by, other, "product_id"], ascending=[False, False, True], kind="stable")
    parts = []
    for scope in SCOPES:
        keyed = ranked.assign(key="" if scope == "shop" else ranked[scope], scope=scope)
        keyed = keyed[keyed["key"].notna()]
        keyed["rank"] = keyed.groupby("key", sort=False).cumcount() + 1
        parts.append(keyed[keyed["rank"] <= DEPTH])
    table = pd.concat(parts, ignore_index=True)[list(COLUMNS)] if parts else pd.DataFrame(columns=list(COLUMNS))
    return table, TrendsInfo(pd.Timestamp(as_of), float(days), by, len(window))


def write_trends(table: pd.DataFrame, info: TrendsInfo, out: Path) -> Path:
    """Write `out/trends.parquet` atomically (a reader sees the old table or the new one, whole)."""
    out.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                           _METADATA_KEY: json.dumps(info.to_dict()).encode()})
    path, partial = out / TRENDS_FILE, out / f".{TRENDS_FILE}.partial"
    pq.write_table(arrow, partial)
    os.replace(partial, path)
    return path


def read_trends(path: Path) -> tuple[pd.DataFrame, TrendsInfo]:
    """A table written by `write_trends` (`path`: the file or its folder); errors name the file."""
    path = path / TRENDS_FILE if path.is_dir() else path
    try:
        arrow = pq.read_table(path)
        info = json.loads(arrow.schema.metadata[_METADATA_KEY])
    except (OSError, pa.ArrowInvalid, KeyError, TypeError, ValueError) as err:
        raise UserFacingError(f"{path}: not a trends table written by `signals trends` ({err})") from None
    missing = set(COLUMNS) - set(arrow.column_names)
    if missing:
        raise UserFacingError(f"{path}: trends table lacks columns {sorted(missing)}")
    return arrow.to_pandas(), TrendsInfo(pd.Timestamp(info["as_of"]), float(info["days"]), info["by"],
                                         int(info["events"]))
