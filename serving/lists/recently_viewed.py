"""`recently_viewed`: the shopper's own viewed products, most recent first, de-duplicated, purchased ones out
(a returning shopper sees them again). Read from the request's events, so products the model never saw
are listed too."""
from __future__ import annotations

from serving.history import ShopperHistory
from serving.lists.named_filter import NamedProduct


def recently_viewed(history: ShopperHistory) -> list[NamedProduct]:
    seen: set[str] = set()
    out = []
    for event in reversed(history.events):
        if event.event_type != "view" or event.product_id in seen or event.product_id in history.purchased:
            continue
        seen.add(event.product_id)
        out.append(NamedProduct(event.product_id, event.category, event.brand, event.price))
    return out
