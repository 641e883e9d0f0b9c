"""`complementary`: products bought together with what is in the cart, or with an empty cart with what was
bought last (its session's purchases): cart add-ons and post-purchase cross-sell.

The bundle's co-purchase table (`training/list_tables.py`, `models.complements`) holds each product's
top complements; a basket's candidates are its products' rows summed (`models.complements.complements_of`).
They depend on the basket's products alone, so the last CACHED_BASKETS small baskets' are kept: carts of one
or two popular products recur.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from models.complements import complements_of
from serving.history import ShopperHistory
from serving.product_groups import ProductGroups

NO_TABLE = "the model's bundle has no co-purchase table (trained on streamed data, or before it existed)"
CACHED_BASKETS = 4096
CACHED_BASKET_SIZE = 8
"""Baskets kept: the last 4,096 of at most 8 products (at most 160 candidates, 2 KB each: 8 MB in all); a
larger basket (a request may send 1,000 events) is summed each time rather than fill the cache."""


class Complementary:
    def __init__(self, arrays: dict[str, np.ndarray], catalogue: ProductGroups):
        self.ids = arrays.get("complement_ids")  # (P, M) int32, or None
        self.scores = arrays.get("complement_score")  # (P, M) float32
        self.catalogue = catalogue
        self._summed = lru_cache(maxsize=CACHED_BASKETS)(self._complements_of)

    def basket(self, history: ShopperHistory) -> set[str]:
        """The products complements are sought for: the cart, else the latest purchase's session."""
        if history.in_cart:
            return history.in_cart
        purchases = [i for i, e in enumerate(history.events) if e.event_type == "purchase"]
        if not purchases:
            return set()
        starts = np.flatnonzero(history.starts_session[:purchases[-1] + 1])
        first = int(starts[-1]) if len(starts) else 0
        return {e.product_id for e in history.events[first:purchases[-1] + 1] if e.event_type == "purchase"}

    def candidates(self, history: ShopperHistory) -> tuple[np.ndarray, np.ndarray, str | None]:
        """(c,) ids and (c,) scores best first, or empty with the reason."""
        empty = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if self.ids is None:
            return *empty, NO_TABLE
        basket = self.basket(history)
        if not basket:
            return *empty, "nothing in the cart and nothing bought"
        known = self.catalogue.known_product_ids(basket)
        if not len(known):
            return *empty, "the model knows none of the cart's products"
        key = tuple(sorted(known.tolist()))  # one key per basket, whatever its order
        ids, scores = self._summed(key) if len(key) <= CACHED_BASKET_SIZE else self._complements_of(key)
        return ids, scores, None if len(ids) else "no co-purchases known for the cart's products"

    def _complements_of(self, basket: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """`complements_of` a basket given as ascending ids (hashable), its arrays read-only (they are cached)."""
        ids, scores = complements_of(np.array(basket, dtype=np.int64), self.ids, self.scores)
        ids.flags.writeable = scores.flags.writeable = False
        return ids, scores
