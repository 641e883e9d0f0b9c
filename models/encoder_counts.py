"""What fitting an `EventEncoder` needs, as counts: taken from a DataFrame in memory, or accumulated by a
streamed pass over partition files (`training.streaming.encoder_counts`). Either way the encoder is built
from these counts by one function, `EventEncoder.from_counts`, so the two data paths cannot drift.

Memory is O(distinct products + categories + brands + prices), independent of the number of events.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.vocab import Vocabulary


@dataclass
class EncoderCounts:
    products: pd.Series  # token -> events in the training window
    categories: pd.Series
    brands: pd.Series
    event_types: set[str]
    price_values: np.ndarray  # sorted distinct prices (non-null)
    price_counts: np.ndarray  # events at each of those prices
    last: pd.DataFrame  # per product: product_id, category, brand of its last event (in user, time order)
    n_events: int

    @classmethod
    def of_events(cls, events: pd.DataFrame) -> "EncoderCounts":
        """Counts of canonical events sorted by user, then time (as `training.labels.make_labels` sorts them)."""
        prices = events["price"].dropna().value_counts().sort_index()
        last = events.dropna(subset=["product_id"]).drop_duplicates("product_id", keep="last")
        return cls(
            products=events["product_id"].astype(object).dropna().value_counts(),
            categories=events["category"].astype(object).dropna().value_counts(),
            brands=events["brand"].astype(object).dropna().value_counts(),
            event_types=set(events["event_type"].dropna().unique()),
            price_values=prices.index.to_numpy(dtype=np.float64),
            price_counts=prices.to_numpy(dtype=np.int64),
            last=last[["product_id", "category", "brand"]],
            n_events=len(events),
        )

    def id_counts(self, vocab: Vocabulary, field: str) -> np.ndarray:
        """(len(vocab),) events per id of `field` ("products", "categories", "brands"); tokens the
        vocabulary does not know are summed on UNK, as a bincount over the encoded events would."""
        counts: pd.Series = getattr(self, field)
        out = np.zeros(len(vocab), dtype=np.int64)
        if len(counts):
            np.add.at(out, vocab.encode(counts.index.to_numpy(dtype=object)), counts.to_numpy())
        return out


def quantiles_from_counts(values: np.ndarray, counts: np.ndarray, q: np.ndarray) -> np.ndarray:
    """`np.quantile(np.repeat(values, counts), q)` (method "linear") without building the repeated array.

    values sorted ascending; counts > 0. Reproduces numpy bit for bit (tests check it)."""
    n = int(counts.sum())
    cum = np.cumsum(counts)

    def order_statistic(i: np.ndarray) -> np.ndarray:
        return values[np.searchsorted(cum, i, side="right")]

    virtual = (n - 1) * np.asarray(q, dtype=np.float64)  # numpy's linear method
    previous = np.floor(virtual)
    nxt = previous + 1
    above = virtual >= n - 1
    previous[above] = n - 1
    nxt[above] = n - 1
    below = virtual < 0
    previous[below] = 0
    nxt[below] = 0
    a = order_statistic(previous.astype(np.int64))
    b = order_statistic(np.minimum(nxt, n - 1).astype(np.int64))
    gamma = virtual - np.floor(virtual)
    # numpy's _lerp, operation for operation
    diff = b - a
    out = a + diff * gamma
    hi = gamma >= 0.5
    out[hi] = (b - diff * (1 - gamma))[hi]
    return out
