"""Alibaba Tianchi "UserBehavior" (Taobao): a header-less CSV of user, item, category, behaviour, Unix time.

No session ids: sessions are cut by inactivity. The dataset documents 2017-11-25 .. 2017-12-03 in China
Standard Time: in the shared sample the last event is 2017-12-03 23:59 +08:00 (15:59 UTC), and reading the
range in UTC would reject some 800 real rows of 2017-11-25 morning. So the range is [11-25, 12-04) at +08:00;
rows outside it (the original file has a few) are rejected as `out_of_range`.
"""
from __future__ import annotations

from pathlib import Path

from events.loaders.formats.base import Source
from events.loaders.formats.mapped import open_mapped_source
from events.loaders.mapping import ColumnMapping, CsvSpec, SourceMapping, TimestampSpec
from events.loaders.options import LoadOptions

TAOBAO = SourceMapping(
    columns=ColumnMapping(
        user_id="user_id",
        ts="timestamp",
        event_type="behavior",
        product_id="item_id",
        category="category_id",
    ),
    event_types={"pv": "view", "cart": "cart", "buy": "purchase", "fav": "wishlist"},
    timestamp=TimestampSpec(unit="s"),
    csv=CsvSpec(header=False, column_names=["user_id", "item_id", "category_id", "behavior", "timestamp"]),
    ts_min="2017-11-25T00:00:00+08:00",
    ts_max="2017-12-04T00:00:00+08:00",
)


def open_source(format_name: str, paths: list[Path], options: LoadOptions) -> Source:
    return open_mapped_source(format_name, paths, options, TAOBAO, origin="the taobao format", file_kind="csv")
