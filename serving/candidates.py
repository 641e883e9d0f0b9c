"""Which products a request allows: its filters as a (P,) mask over the catalogue.

The products of each category and brand are grouped once at load (serving/product_groups.py), so a filter
costs a few array writes per request, not a scan of the catalogue.
"""
from __future__ import annotations

import numpy as np

from serving.product_groups import ProductGroups
from serving.history import ShopperHistory
from serving.api_types import Filters


def allowed_products(filters: Filters, history: ShopperHistory, catalogue: ProductGroups) -> np.ndarray | None:
    """(P,) bool, True = may be recommended; None when the filters allow everything."""
    allowed: np.ndarray | None = None

    def restrict(mask: np.ndarray) -> None:
        nonlocal allowed
        allowed = mask if allowed is None else allowed & mask

    if filters.categories is not None:
        restrict(_members(catalogue.encoder.categories.known_ids(filters.categories), catalogue.products_of_category, catalogue.n_products))
    if filters.brands is not None:
        restrict(_members(catalogue.encoder.brands.known_ids(filters.brands), catalogue.products_of_brand, catalogue.n_products))
    if filters.has_price_range:
        restrict(_price_mask(filters, history, catalogue))
    dropped: set[str] = set()
    if filters.exclude_purchased:
        dropped |= history.purchased
    if filters.exclude_in_cart:
        dropped |= history.in_cart
    if dropped:
        mask = np.ones(catalogue.n_products, dtype=bool)
        mask[catalogue.known_product_ids(dropped)] = False
        restrict(mask)
    return allowed


def _members(group_ids: np.ndarray, members: list[np.ndarray], n_products: int) -> np.ndarray:
    """Products in any of the given groups (names the model does not know were already dropped)."""
    mask = np.zeros(n_products, dtype=bool)
    for group in group_ids:
        mask[members[group]] = True
    return mask


def _price_mask(filters: Filters, history: ShopperHistory, catalogue: ProductGroups) -> np.ndarray:
    low = filters.min_price if filters.min_price is not None else 0.0
    high = filters.max_price if filters.max_price is not None else np.inf
    in_range = {p for p, price in history.last_price.items() if low <= price <= high}
    if filters.unknown_price == "exclude":
        mask = np.zeros(catalogue.n_products, dtype=bool)
        mask[catalogue.known_product_ids(in_range)] = True
    else:
        mask = np.ones(catalogue.n_products, dtype=bool)
        mask[catalogue.known_product_ids(set(history.last_price) - in_range)] = False
    return mask
