"""`recently_viewed`: the shopper's own viewed products, most recent first, de-duplicated, purchased ones out
(a returning shopper sees them again). Read from the request's events, so products the model never saw
are listed too. Yielded one by one: the caller stops at its k after the filters."""
from __future__ import annotations

from collections.abc import Iterator

from serving.history import ShopperHistory
from serving.lists.named_filter import NamedProduct


def recently_viewed(history: ShopperHistory) -> Iterator[NamedProduct]:
    seen: set[str] = set()
    for event in reversed(history.events):
        if event.event_type != "view" or event.product_id in seen or event.product_id in history.purchased:
            continue
        seen.add(event.product_id)
        yield NamedProduct(event.product_id, event.category, event.brand, event.price)
