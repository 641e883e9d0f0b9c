"""The request's filters on products named by id, category, brand and price rather than by catalogue id:
the lists whose products may be unknown to the model (recently viewed, trending).

The same rules as serving/candidates.py applies to catalogue ids, read on the item's own fields: its
category and brand as the request's events (or the trends table) name them, its price the latest the
request's events show, else the one given with the item.
"""
from __future__ import annotations

from dataclasses import dataclass

from serving.api_types import Filters
from serving.history import ShopperHistory


@dataclass(frozen=True)
class NamedProduct:
    product_id: str
    category: str | None
    brand: str | None
    price: float | None = None
    score: float | None = None


def allows(filters: Filters, history: ShopperHistory, item: NamedProduct) -> bool:
    if filters.categories is not None and item.category not in filters.categories:
        return False
    if filters.brands is not None and item.brand not in filters.brands:
        return False
    if filters.exclude_purchased and item.product_id in history.purchased:
        return False
    if filters.exclude_in_cart and item.product_id in history.in_cart:
        return False
    if filters.has_price_range:
        price = history.last_price.get(item.product_id, item.price)
        if price is None:
            return filters.unknown_price == "include"
        low = filters.min_price if filters.min_price is not None else 0.0
        high = filters.max_price if filters.max_price is not None else float("inf")
        return low <= price <= high
    return True
