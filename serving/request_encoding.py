"""A shopper's history -> the model's integer features, equal to `EventEncoder.encode` on the same events.

Only the vocabulary lookups differ (dicts instead of pandas, see serving/catalogue.py); price buckets
are the encoder's own function and gap buckets use its edges, so there is one encoding.
"""
from __future__ import annotations

import numpy as np

from models.encoding import FIRST_EVENT_GAP, GAP_EDGES_S
from models.vocab import UNK
from serving.catalogue import Catalogue
from serving.history import ShopperHistory


def encode_history(history: ShopperHistory, catalogue: Catalogue, window: int) -> dict[str, np.ndarray]:
    """Features of the latest `window` events, each (l,) int64, l = min(window, events); history not empty."""
    events = history.events[-window:]
    ts_s = history.ts_us[-window:] / 1e6
    gap_bucket = np.empty(len(events), dtype=np.int64)
    gap_bucket[0] = FIRST_EVENT_GAP  # the window is encoded as the user's whole timeline, as offline
    gap_bucket[1:] = 2 + np.searchsorted(GAP_EDGES_S, np.diff(ts_s), side="right")
    starts_session = history.starts_session[-window:].copy()
    starts_session[0] = True
    prices = np.array([np.nan if e.price is None else e.price for e in events], dtype=np.float64)
    return {
        "product": np.array([catalogue.product_ids.get(e.product_id, UNK) for e in events], dtype=np.int64),
        "category": np.array([catalogue.category_ids.get(e.category, UNK) for e in events], dtype=np.int64),
        "brand": np.array([catalogue.brand_ids.get(e.brand, UNK) for e in events], dtype=np.int64),
        "event_type": np.array([catalogue.event_type_ids.get(e.event_type, UNK) for e in events], dtype=np.int64),
        "price_bucket": catalogue.encoder.price_bucket(prices),
        "gap_bucket": gap_bucket,
        "new_session": starts_session.astype(np.int64) + 1,  # 1 = continues a session, 2 = starts one
    }
