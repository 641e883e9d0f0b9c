"""Event encoding: the one place where raw events become integer features.

Training fits an `EventEncoder` on the training window and saves it inside the model bundle; serving
loads that same encoder, so an event can never be encoded two different ways.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from events.schema import EVENT_TYPES
from models.encoder_counts import EncoderCounts, quantiles_from_counts
from models.vocab import N_RESERVED, UNK, Vocabulary

EMBEDDED = ("product", "category", "brand", "event_type", "price_bucket", "gap_bucket", "new_session")
"""Integer ids per event, each embedded by the model."""
HISTORY_COUNTS = ("prior_events", "prior_purchases", "prior_sessions")
"""The shopper's events, purchases and sessions before each event, over the shopper's whole history (the
whole table offline; every event of the request in serving, `with_whole_history`): the customer
history a 50-event window cuts off (benchmarks/README.md: LightGBM's intent lead rests on it). Counts, not
ids: read as log1p."""
HISTORY_TIMES = ("hours_as_customer", "hours_since_purchase")
"""Whole hours since the shopper's first event and since the shopper's last purchase (0 when none: prior_purchases
says which), before each event, over the same whole history as HISTORY_COUNTS: with the counts they give the
visit and purchase rates and the recency that RFM's churn features rest on. Read as log1p."""
WHOLE_HISTORY = (*HISTORY_COUNTS, *HISTORY_TIMES)
"""The features read over the shopper's whole history (`history_features`), not the window's."""
GAP_MINUTES = "gap_minutes"
"""Whole minutes since the shopper's previous event (0 at the first), capped at MAX_GAP_MINUTES: the exact value
behind gap_bucket, for a head that needs a threshold the buckets do not have (the uplift head's "how soon did
the shopper come back": a "do not disturb" rule at 90 minutes falls inside the 1 h - 3 h bucket)."""
MAX_GAP_MINUTES = 90 * 24 * 60
FEATURES = (*EMBEDDED, *WHOLE_HISTORY, GAP_MINUTES)
"""Integer features per event: what a window carries."""

# Time since the user's previous event, in seconds. Log-spaced: a 10 s and a 20 s gap differ in
# meaning as much as a 1 day and a 2 day gap. Bucket 1 is reserved for "first event of the user".
GAP_EDGES_S = np.array(
    [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
     86400, 2 * 86400, 4 * 86400, 7 * 86400, 14 * 86400, 30 * 86400], dtype=np.float64
)
FIRST_EVENT_GAP = 1
N_GAP_BUCKETS = 2 + len(GAP_EDGES_S) + 1  # PAD, first event, then searchsorted's 0..len(edges)
MISSING_PRICE = 1

@dataclass
class EventEncoder:
    products: Vocabulary
    categories: Vocabulary
    brands: Vocabulary
    event_types: Vocabulary
    price_edges: np.ndarray  # quantile edges of log1p(price) from the training window
    product_category: np.ndarray  # (n_products,) category id of each product id: the affinity roll-up
    product_brand: np.ndarray  # (n_products,) brand id of each product id

    @classmethod
    def fit(cls, events: pd.DataFrame, min_count: int = 1, n_price_buckets: int = 16) -> "EventEncoder":
        """Fit vocabularies and price buckets on (training-window) canonical events sorted by user, then time."""
        return cls.from_counts(EncoderCounts.of_events(events), min_count, n_price_buckets)

    @classmethod
    def from_counts(cls, counts: EncoderCounts, min_count: int = 1, n_price_buckets: int = 16) -> "EventEncoder":
        """The one way an encoder is fitted: vocabularies (count >= min_count, most frequent first), price
        buckets from quantiles of log1p(price), and each product's last-seen category and brand."""
        products = Vocabulary.from_counts(counts.products, min_count)
        categories = Vocabulary.from_counts(counts.categories, min_count)
        brands = Vocabulary.from_counts(counts.brands, min_count)
        event_types = Vocabulary(list(EVENT_TYPES) + sorted(counts.event_types - set(EVENT_TYPES)))
        quantiles = np.linspace(0, 1, n_price_buckets + 1)[1:-1]
        if counts.price_counts.sum():
            # log1p is monotone, so the sorted log-prices are the log1p of the sorted prices.
            edges = quantiles_from_counts(np.log1p(counts.price_values), counts.price_counts, quantiles)
            price_edges = np.unique(edges)
        else:
            price_edges = np.zeros(0)
        # Each product's last-seen category and brand (products rarely move between them).
        pid = products.encode(counts.last["product_id"])
        product_category = np.full(len(products), UNK, dtype=np.int64)
        product_brand = np.full(len(products), UNK, dtype=np.int64)
        product_category[pid] = categories.encode(counts.last["category"])
        product_brand[pid] = brands.encode(counts.last["brand"])
        product_category[:N_RESERVED] = UNK
        product_brand[:N_RESERVED] = UNK
        return cls(products, categories, brands, event_types, price_edges, product_category, product_brand)

    @property
    def n_price_buckets(self) -> int:
        return 2 + len(self.price_edges) + 1  # PAD, missing, then searchsorted's 0..len(edges)

    def encode(self, events: pd.DataFrame) -> dict[str, np.ndarray]:
        """Integer features per event, each (N,). `events` must be sorted by user, then time."""
        user = events["user_id"].to_numpy()
        session = events["session_id"].to_numpy()
        same_user = np.zeros(len(events), dtype=bool)
        same_user[1:] = user[1:] == user[:-1]
        starts_session = np.ones(len(events), dtype=bool)
        starts_session[1:] = ~(same_user[1:] & (session[1:] == session[:-1]))
        return self.encode_columns(
            product_id=events["product_id"], category=events["category"], brand=events["brand"],
            event_type=events["event_type"], price=events["price"].to_numpy(dtype=np.float64, na_value=np.nan),
            ts_seconds=events["ts"].to_numpy(dtype="datetime64[us]").astype(np.int64) / 1e6,
            first_of_user=~same_user, starts_session=starts_session)

    def encode_columns(self, *, product_id, category, brand, event_type, price: np.ndarray, ts_seconds: np.ndarray,
                       first_of_user: np.ndarray, starts_session: np.ndarray) -> dict[str, np.ndarray]:
        """The one encoding, on columns: offline tables (via `encode`) and serving requests both end here."""
        gap = np.diff(ts_seconds, prepend=ts_seconds[:1] if len(ts_seconds) else ts_seconds)
        gap_bucket = np.where(first_of_user, FIRST_EVENT_GAP, 2 + np.searchsorted(GAP_EDGES_S, gap, side="right"))
        event_type_id = self.event_types.encode(event_type)
        return {
            "product": self.products.encode(product_id),
            "category": self.categories.encode(category),
            "brand": self.brands.encode(brand),
            "event_type": event_type_id,
            "price_bucket": self.price_bucket(price),
            "gap_bucket": gap_bucket.astype(np.int64),
            "new_session": starts_session.astype(np.int64) + 1,  # 1 = continues a session, 2 = starts one; 0 = PAD
            GAP_MINUTES: np.where(first_of_user, 0, np.clip(gap, 0, MAX_GAP_MINUTES * 60) // 60).astype(np.int64),
            **history_features(first_of_user, starts_session, event_type_id == self.event_types.encode(["purchase"])[0],
                               ts_seconds),
        }

    def price_bucket(self, price: np.ndarray) -> np.ndarray:
        buckets = 2 + np.searchsorted(self.price_edges, np.log1p(np.clip(price, 0, None)), side="right")
        return np.where(np.isnan(price), MISSING_PRICE, buckets).astype(np.int64)

    def sizes(self) -> dict[str, int]:
        """Embedding table size per feature; the model config is built from these."""
        return {
            "n_products": len(self.products),
            "n_categories": len(self.categories),
            "n_brands": len(self.brands),
            "n_event_types": len(self.event_types),
            "n_price_buckets": self.n_price_buckets,
            "n_gap_buckets": N_GAP_BUCKETS,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "products": self.products.to_list(),
            "categories": self.categories.to_list(),
            "brands": self.brands.to_list(),
            "event_types": self.event_types.to_list(),
            "price_edges": self.price_edges.tolist(),
            "product_category": self.product_category.tolist(),
            "product_brand": self.product_brand.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EventEncoder":
        return cls(
            products=Vocabulary(d["products"]),
            categories=Vocabulary(d["categories"]),
            brands=Vocabulary(d["brands"]),
            event_types=Vocabulary(d["event_types"]),
            price_edges=np.asarray(d["price_edges"], dtype=np.float64),
            product_category=np.asarray(d["product_category"], dtype=np.int64),
            product_brand=np.asarray(d["product_brand"], dtype=np.int64),
        )


def churn_gap_feature(seconds_since_last_event: np.ndarray) -> np.ndarray:
    """log1p(days) since the user's last event at the moment churn is asked for; (N,) float32."""
    return np.log1p(np.clip(seconds_since_last_event, 0, None) / 86400.0).astype(np.float32)


def history_features(first_of_user: np.ndarray, starts_session: np.ndarray, is_purchase: np.ndarray,
                     ts_seconds: np.ndarray) -> dict[str, np.ndarray]:
    """(N,) bools and times of events sorted by user, then time -> HISTORY_COUNTS and HISTORY_TIMES, each (N,),
    from the user's events strictly before each one."""
    n = len(first_of_user)
    if n == 0:
        return {name: np.zeros(0, dtype=np.int64) for name in WHOLE_HISTORY}
    rows = np.arange(n)
    user_start = np.maximum.accumulate(np.where(first_of_user, rows, 0))  # (N,) row of the user's first event

    def before(flags: np.ndarray) -> np.ndarray:
        total = np.cumsum(flags, dtype=np.int64) - flags  # (N,) flags strictly before, over the whole table
        return total - total[user_start]  # minus what came before the user's first event

    # The row of the user's latest purchase strictly before each event (-1: none since the user's first event).
    last_purchase = np.maximum.accumulate(np.where(is_purchase, rows, -1))  # (N,) at or before
    last_purchase = np.append(-1, last_purchase[:-1])  # strictly before
    last_purchase = np.where(last_purchase >= user_start, last_purchase, -1)
    hours = np.asarray(ts_seconds, dtype=np.float64) / 3600.0  # (N,)
    since_purchase = np.where(last_purchase >= 0, hours - hours[np.maximum(last_purchase, 0)], 0.0)
    return {"prior_events": rows.astype(np.int64) - user_start,
            "prior_purchases": before(is_purchase.astype(np.int64)),
            "prior_sessions": before(starts_session.astype(np.int64)),
            "hours_as_customer": np.floor(np.clip(hours - hours[user_start], 0, None)).astype(np.int64),
            "hours_since_purchase": np.floor(np.clip(since_purchase, 0, None)).astype(np.int64)}


def with_whole_history(window: dict[str, np.ndarray], starts_session: np.ndarray, is_purchase: np.ndarray,
                       ts_seconds: np.ndarray) -> dict[str, np.ndarray]:
    """Features of a history's latest events, encoded on their own (serving, offline scoring), with the
    HISTORY_COUNTS and HISTORY_TIMES of the whole history instead of the window's, as training reads them.
    starts_session, is_purchase, ts_seconds: (N,) over the whole time-sorted history, N >= the window's length."""
    n, w = len(starts_session), len(window["product"])
    if n == w:
        return window  # the window is the whole history: its own history features are the whole history's
    first_of_user = np.zeros(n, dtype=bool)
    first_of_user[0] = True
    whole = history_features(first_of_user, starts_session | first_of_user, is_purchase, ts_seconds)
    return window | {name: values[n - w:] for name, values in whole.items()}
