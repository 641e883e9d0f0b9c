"""Fit the EventEncoder from counts streamed over the partitions, never holding the events at once.

`EventEncoder.fit(train_window)` needs, over the training window (ts < val_start):
- token counts of products, categories and brands (vocabularies: count >= min_count, most frequent
  first, ties by token);
- the extra event types;
- quantiles of log1p(price): computed exactly here from counts of distinct prices (the sorted sample
  is implied by them), with numpy's "linear" interpolation reproduced bit for bit;
- each product's category and brand at its last event in (user_id, ts, file order): the row the
  in-memory `drop_duplicates(keep="last")` picks after `make_labels` sorted the events.
Memory is O(distinct products + categories + brands + prices), independent of the number of events.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from models.encoding import CORE_EVENT_TYPES, EventEncoder
from models.vocab import N_RESERVED, UNK, Vocabulary
from training.schema import CANONICAL_SCHEMA
from training.streaming.partitions import iter_batches

BATCH_ROWS = 1 << 19
TS_TYPE = CANONICAL_SCHEMA.field("ts").type


def _merge_counts(running: pa.Table | None, values: pa.Array) -> pa.Table:
    """Add the counts of `values` (nulls dropped) to a (value, count) table."""
    vc = pc.value_counts(pc.drop_null(values))
    new = pa.table({"value": vc.field("values"), "count": vc.field("counts").cast(pa.int64())})
    if running is None:
        return new
    both = pa.concat_tables([running, new])
    out = both.group_by("value").aggregate([("count", "sum")])
    return pa.table({"value": out.column("value"), "count": out.column("count_sum")})


def _as_series(counts: pa.Table | None) -> pd.Series:
    if counts is None or counts.num_rows == 0:
        return pd.Series(dtype=np.int64)
    return pd.Series(counts.column("count").to_numpy(), index=counts.column("value").to_pylist())


def vocabulary_from_counts(counts: pd.Series, min_count: int = 1) -> Vocabulary:
    """The Vocabulary that `Vocabulary.fit` builds from the values these counts were taken over."""
    counts = counts[counts >= min_count]
    order = sorted(zip(counts.index.tolist(), counts.to_numpy().tolist()), key=lambda kv: (-kv[1], str(kv[0])))
    return Vocabulary([str(token) for token, _ in order])


def quantiles_from_counts(values: np.ndarray, counts: np.ndarray, q: np.ndarray) -> np.ndarray:
    """`np.quantile(np.repeat(values, counts), q)` (method "linear") without building the repeated array.

    values must be sorted ascending and distinct-or-equal-adjacent; counts > 0."""
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


@dataclass
class StreamedCounts:
    """Everything the encoder and the popularity proposal need, from one pass over the training window."""
    products: pd.Series  # token -> count
    categories: pd.Series
    brands: pd.Series
    event_types: set[str]
    price_values: np.ndarray  # sorted distinct prices (non-null)
    price_counts: np.ndarray
    last: pd.DataFrame  # per product: product_id, category, brand of its last event
    n_events: int

    def encoder(self, min_count: int = 1, n_price_buckets: int = 16) -> EventEncoder:
        products = vocabulary_from_counts(self.products, min_count)
        categories = vocabulary_from_counts(self.categories, min_count)
        brands = vocabulary_from_counts(self.brands, min_count)
        extra = sorted(self.event_types - set(CORE_EVENT_TYPES))
        event_types = Vocabulary(list(CORE_EVENT_TYPES) + extra)
        quantiles = np.linspace(0, 1, n_price_buckets + 1)[1:-1]
        if self.price_counts.sum():
            # log1p is monotone, so the sorted log-prices are the log1p of the sorted prices.
            edges = quantiles_from_counts(np.log1p(self.price_values), self.price_counts, quantiles)
            price_edges = np.unique(edges)
        else:
            price_edges = np.zeros(0)
        pid = products.encode(self.last["product_id"])
        product_category = np.full(len(products), UNK, dtype=np.int64)
        product_brand = np.full(len(products), UNK, dtype=np.int64)
        product_category[pid] = categories.encode(self.last["category"])
        product_brand[pid] = brands.encode(self.last["brand"])
        product_category[:N_RESERVED] = UNK
        product_brand[:N_RESERVED] = UNK
        return EventEncoder(products, categories, brands, event_types, price_edges, product_category, product_brand)

    @staticmethod
    def id_counts(vocab: Vocabulary, counts: pd.Series) -> np.ndarray:
        """(len(vocab),) event counts per id (unknown tokens summed on UNK), as a bincount over events."""
        out = np.zeros(len(vocab), dtype=np.int64)
        if len(counts):
            np.add.at(out, vocab.encode(counts.index.to_numpy(dtype=object)), counts.to_numpy())
        return out


def _reduce_last(table: pa.Table) -> pa.Table:
    """Per product, the row with the largest (user_id, ts, pos)."""
    if table.num_rows == 0:
        return table
    idx = pc.sort_indices(table, sort_keys=[("product_id", "ascending"), ("user_id", "ascending"),
                                            ("ts", "ascending"), ("pos", "ascending")])
    t = table.take(idx)
    prod = t.column("product_id").combine_chunks()
    n = t.num_rows
    is_last = np.ones(n, dtype=bool)
    if n > 1:
        is_last[:-1] = pc.not_equal(prod.slice(0, n - 1), prod.slice(1)).to_numpy(zero_copy_only=False)
    return t.filter(pa.array(is_last))


def stream_counts(files: list[Path], val_start: pd.Timestamp, batch_rows: int = BATCH_ROWS) -> StreamedCounts:
    """One pass over `files` (each a partition: a user's rows all in one file, in their file order)."""
    cutoff = pa.scalar(pd.Timestamp(val_start), TS_TYPE)
    products = categories = brands = prices = last = None
    event_types: set[str] = set()
    n_events = 0
    for file in files:
        pos0 = 0
        for batch in iter_batches(file, ["user_id", "ts", "event_type", "product_id", "category", "brand", "price"],
                                  batch_rows):
            t = pa.Table.from_batches([batch])
            pos = pa.array(np.arange(pos0, pos0 + t.num_rows, dtype=np.int64))
            pos0 += t.num_rows
            t = t.append_column("pos", pos)
            t = t.filter(pc.less(t.column("ts"), cutoff))
            if t.num_rows == 0:
                continue
            n_events += t.num_rows
            products = _merge_counts(products, t.column("product_id").combine_chunks())
            categories = _merge_counts(categories, t.column("category").combine_chunks())
            brands = _merge_counts(brands, t.column("brand").combine_chunks())
            prices = _merge_counts(prices, t.column("price").combine_chunks())
            event_types |= {v for v in pc.unique(t.column("event_type")).to_pylist() if v is not None}
            cand = t.select(["product_id", "user_id", "ts", "pos", "category", "brand"])
            cand = cand.filter(pc.is_valid(cand.column("product_id")))
            # Rows of one user live in one partition, so (user_id, ts, position in file) orders them as
            # make_labels' stable sort does; the partition number never decides a tie.
            cand = _reduce_last(cand)
            last = cand if last is None else _reduce_last(pa.concat_tables([last, cand]))
    price_s = _as_series(prices).sort_index()
    last_df = (last.select(["product_id", "category", "brand"]).to_pandas() if last is not None
               else pd.DataFrame({"product_id": [], "category": [], "brand": []}))
    return StreamedCounts(
        products=_as_series(products), categories=_as_series(categories), brands=_as_series(brands),
        event_types=event_types, price_values=price_s.index.to_numpy(dtype=np.float64),
        price_counts=price_s.to_numpy(dtype=np.int64), last=last_df, n_events=n_events,
    )
