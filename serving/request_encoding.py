"""A shopper's history -> the model's integer features through `EventEncoder.encode_columns`, the
same encoding training uses (the window is encoded as the user's whole timeline, as offline)."""
from __future__ import annotations

import numpy as np

from models.encoding import EventEncoder, with_whole_history
from serving.history import ShopperHistory


def encode_history(history: ShopperHistory, encoder: EventEncoder, window: int) -> dict[str, np.ndarray]:
    """Features of the latest `window` events, each (l,) int64, l = min(window, events); history not empty."""
    events = history.events[-window:]
    first_of_user = np.zeros(len(events), dtype=bool)
    first_of_user[0] = True
    starts_session = history.starts_session[-window:].copy()
    starts_session[0] = True
    encoded = encoder.encode_columns(
        product_id=[e.product_id for e in events], category=[e.category for e in events],
        brand=[e.brand for e in events], event_type=[e.event_type for e in events],
        price=np.array([np.nan if e.price is None else e.price for e in events], dtype=np.float64),
        ts_seconds=history.ts_us[-window:] / 1e6, first_of_user=first_of_user, starts_session=starts_session)
    if len(history.events) == len(events):
        return encoded
    purchases = np.fromiter((e.event_type == "purchase" for e in history.events), bool, len(history.events))
    return with_whole_history(encoded, history.starts_session, purchases, history.ts_us / 1e6)
