"""`trending`: the most bought (or viewed) products of the trends table's window in the shopper's current
category (of their latest event) and in their top brand (most events in the request), taken in turn; the
shop's own best when the table has neither.

The table (events/trends.py, written by `signals trends`) is watched, not loaded per request: its
modification time is looked at most once a second, and a newer table replaces the old one whole, without
a restart. Every answer with `trending` names the table's as-of. A shopper's candidates are yielded one by
one: the caller stops at its k after the filters, long before the end of the two lists.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from itertools import chain, zip_longest
from pathlib import Path

from events.errors import UserFacingError
from events.trends import TRENDS_FILE, TrendsInfo, read_trends
from serving.api_types import TrendsIdentity
from serving.history import ShopperHistory
from serving.lists.named_filter import NamedProduct

log = logging.getLogger(__name__)

POLL_S = 1.0


class TrendsTable:
    def __init__(self, items: dict[tuple[str, str], list[NamedProduct]], info: TrendsInfo):
        self.items = items  # (scope, key) -> products, best first
        self.info = info
        self.identity = TrendsIdentity(as_of=info.as_of.floor("us").to_pydatetime(), days=info.days, by=info.by)

    @classmethod
    def read(cls, path: Path) -> TrendsTable:
        frame, info = read_trends(path)
        frame = frame.astype(object).where(frame.notna(), None)
        items: dict[tuple[str, str], list[NamedProduct]] = {}
        for scope, key, product, category, brand, price, score in zip(
                frame["scope"], frame["key"], frame["product_id"], frame["category"], frame["brand"], frame["price"],
                frame[info.by]):
            items.setdefault((scope, key), []).append(NamedProduct(product, category, brand, price, float(score)))
        return cls(items, info)

    def candidates(self, history: ShopperHistory) -> tuple[Iterator[NamedProduct], str | None]:
        """The category's and the top brand's products in turn, de-duplicated; the shop's if neither has any."""
        category = next((e.category for e in reversed(history.events) if e.category is not None), None)
        brand = top_brand(history)
        lists = [self.items.get(("category", category), []) if category else [],
                 self.items.get(("brand", brand), []) if brand else []]
        note = None
        if not any(lists):
            lists, note = [self.items.get(("shop", ""), [])], "shop-wide (no trends for the shopper's category or brand)"
        return _distinct(chain.from_iterable(zip_longest(*lists))), note


def _distinct(items: Iterator[NamedProduct | None]) -> Iterator[NamedProduct]:
    seen: set[str] = set()
    for item in items:
        if item is not None and item.product_id not in seen:
            seen.add(item.product_id)
            yield item


def top_brand(history: ShopperHistory) -> str | None:
    """The brand of most of the request's events; ties go to the most recent."""
    brands = [e.brand for e in history.events if e.brand is not None]
    if not brands:
        return None
    counts = Counter(brands)  # counted in C from a list; a generator would feed it one Python step at a time
    best = max(counts.values())
    return next(b for b in reversed(brands) if counts[b] == best)


class WatchedTrends:
    """The trends table at `path` (a folder or its trends.parquet), reloaded when the file changes."""

    def __init__(self, path: Path | None):
        self.path = None if path is None else (path / TRENDS_FILE if path.suffix != ".parquet" else path)
        self.table: TrendsTable | None = None
        self._mtime: int | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> TrendsTable | None:
        """The current table, after looking at the file if a second has passed since the last look."""
        now = time.monotonic()
        if self.path is None or (not force and now - self._checked < POLL_S):
            return self.table
        with self._lock:
            self._checked = now
            try:
                mtime = os.stat(self.path).st_mtime_ns
            except OSError:
                return self.table
            if mtime != self._mtime:
                self._mtime = mtime
                try:
                    self.table = TrendsTable.read(self.path)
                    log.info("trends table as of %s loaded from %s", self.table.info.as_of, self.path)
                except UserFacingError as err:  # keep serving the previous table; say so once per file version
                    log.warning("%s; still serving the previous trends table", err)
        return self.table

    @property
    def missing_reason(self) -> str:
        if self.path is None:
            return "no trends table is served (start the server with SIGNALS_TRENDS=DIR from `signals trends`)"
        return f"no trends table at {self.path} yet"
