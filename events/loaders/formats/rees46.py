"""REES46 "eCommerce behavior data from multi category store" (Kaggle, mkechinov), one CSV per month.

`category` is the readable `category_code` (electronics.smartphone) where the shop gave one, else the
numeric `category_id`: a category without a code never has one, so the two never name the same category.
"""
from __future__ import annotations

from pathlib import Path

from events.loaders.formats.base import Source
from events.loaders.formats.mapped import open_mapped_source
from events.loaders.mapping import ColumnMapping, SourceMapping, TimestampSpec
from events.loaders.options import LoadOptions

REES46 = SourceMapping(
    columns=ColumnMapping(
        user_id="user_id",
        session_id="user_session",
        ts="event_time",
        event_type="event_type",
        product_id="product_id",
        category=["category_code", "category_id"],
        brand="brand",
        price="price",
    ),
    timestamp=TimestampSpec(format="%Y-%m-%d %H:%M:%S UTC"),
)


def open_source(format_name: str, paths: list[Path], options: LoadOptions) -> Source:
    return open_mapped_source(format_name, paths, options, REES46, origin="the rees46 format", file_kind="csv")
