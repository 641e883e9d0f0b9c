"""`EncoderCounts` (what fitting the EventEncoder needs) from one streamed pass over the partition files,
never holding the events at once.

Over the training window (ts < val_start): token counts of products, categories and brands, the event
types, counts of distinct prices (their quantiles are implied by them), and each product's category and
brand at its last event in (user_id, ts, file order): the row the in-memory
`drop_duplicates(keep="last")` picks after `make_labels` sorted the events.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from models.encoder_counts import EncoderCounts
from events.schema import CANONICAL_SCHEMA
from events.partitions import iter_batches

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


def stream_counts(files: list[Path], val_start: pd.Timestamp, batch_rows: int = BATCH_ROWS) -> EncoderCounts:
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
    return EncoderCounts(
        products=_as_series(products), categories=_as_series(categories), brands=_as_series(brands),
        event_types=event_types, price_values=price_s.index.to_numpy(dtype=np.float64),
        price_counts=price_s.to_numpy(dtype=np.int64), last=last_df, n_events=n_events,
    )
