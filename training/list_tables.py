"""The bundle's tables for the endpoint's lists by purpose (serving/lists/): computed once from the events
the encoder was fitted on, saved beside the weights (`models.bundle.LIST_ARRAYS`), never per request.

- `complement_ids`, `complement_score` (P, M): each product's top-M co-purchase complements
  (`models.complements`: carts and purchases of one session form a basket);
- `product_price` (P,): each product's median price in that window, NaN if never priced (the price band
  of `similar`);
- `customer_vectors` (N, D), `customer_purchases` (N, R): the index of `people_like_you`
  (`models.customer_index`): the N most recent buyers' representations (unit rows) and their R latest
  distinct purchases, most recent first, PAD-padded.
"""
from __future__ import annotations

import logging
from itertools import pairwise

import numpy as np
import pandas as pd

from models.complements import complement_table
from models.customer_index import unit_rows
from models.encoding import WHOLE_HISTORY, EventEncoder
from models.network import SessionSignalsModel
from models.predictor import last_states
from models.vocab import N_RESERVED, PAD

log = logging.getLogger(__name__)

COMPLEMENTS_PER_PRODUCT = 20
BASKET_EVENTS = ("cart", "purchase")
INDEXED_CUSTOMERS = 20_000
"""The most recent buyers kept in the `people_like_you` index: 20,000 x D floats (5 MB at D = 64), one
exact matmul per request (benchmarks/README.md, serving cost)."""
PURCHASES_PER_CUSTOMER = 10
STATES_BATCH = 512


def list_arrays(events: pd.DataFrame | None, encoder: EventEncoder,
                model: SessionSignalsModel | None = None) -> dict[str, np.ndarray]:
    """Canonical events of the encoder's window -> the arrays; {} when the run has no events in memory
    (streamed data: the service then answers `complementary` empty with a note saying why). Without a
    `model` (in eval mode) there is no customer index (`people_like_you` says so)."""
    if events is None:
        return {}
    n_products = len(encoder.products)
    product = encoder.products.encode(events["product_id"].to_numpy())  # (E,)
    in_basket = events["event_type"].isin(BASKET_EVENTS).to_numpy()
    basket = pd.MultiIndex.from_arrays([events["user_id"], events["session_id"]]).factorize()[0]  # (E,)
    ids, score = complement_table(basket[in_basket], product[in_basket], n_products, COMPLEMENTS_PER_PRODUCT)
    prices = pd.Series(events["price"].to_numpy(dtype=np.float64)).groupby(product).median()  # by product id
    price = np.full(n_products, np.nan, dtype=np.float32)
    price[prices.index.to_numpy()] = prices.to_numpy()
    price[:N_RESERVED] = np.nan  # PAD, and UNK's pooled rare products: no one price
    log.info("list tables: complements for %d of %d products, prices for %d",
             int((ids[:, 0] > 0).sum()), n_products, int(np.isfinite(price).sum()))
    arrays = {"complement_ids": ids, "complement_score": score, "product_price": price}
    if model is not None:
        arrays |= customer_index(events, encoder, model)
    return arrays


def recent_buyers(events: pd.DataFrame, encoder: EventEncoder, n: int, per_customer: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The n customers with the latest purchases -> (N,) their user ids, latest buyer first, and (N, R)
    their `per_customer` latest distinct purchased product ids, most recent first, PAD-padded (products the
    encoder does not know are left out: they cannot be recommended)."""
    bought = events[events["event_type"] == "purchase"][["user_id", "ts", "product_id"]]
    bought = bought.assign(product=encoder.products.encode(bought["product_id"].to_numpy()))
    bought = bought[bought["product"] >= N_RESERVED].sort_values("ts", ascending=False, kind="stable")
    bought = bought.drop_duplicates(["user_id", "product"])  # each customer's latest purchase of each product
    users = bought["user_id"].drop_duplicates().to_numpy()[:n]  # (N,) by latest purchase
    bought = bought[bought["user_id"].isin(users)]
    bought = bought.assign(rank=bought.groupby("user_id", sort=False).cumcount())
    bought = bought[bought["rank"] < per_customer]
    row = pd.Index(users).get_indexer(bought["user_id"])
    purchases = np.full((len(users), per_customer), PAD, dtype=np.int32)  # (N, R)
    purchases[row, bought["rank"].to_numpy()] = bought["product"].to_numpy()
    return users, purchases


def customer_index(events: pd.DataFrame, encoder: EventEncoder, model: SessionSignalsModel) -> dict[str, np.ndarray]:
    """The index of `people_like_you`: recent buyers' states after their latest event of the window (the
    latest `max_len` events, encoded as the endpoint encodes a request) and their recent purchases."""
    users, purchases = recent_buyers(events, encoder, INDEXED_CUSTOMERS, PURCHASES_PER_CUSTOMER)
    if not len(users):
        return {}
    timelines = events[events["user_id"].isin(users)].sort_values(["user_id", "ts"], kind="stable")
    in_window = (timelines.groupby("user_id", sort=False).cumcount(ascending=False) < model.cfg.max_len).to_numpy()
    windows = timelines[in_window]
    features = encoder.encode(windows)  # each (E,), users in sorted order
    # The history features (counts, times) are the whole history's, as the endpoint computes them from every
    # event of a request; the rest is the window's own encoding, as the endpoint encodes it.
    whole = encoder.encode(timelines)
    for name in WHOLE_HISTORY:
        features[name] = whole[name][in_window]
    user = windows["user_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    bounds = np.r_[starts, len(user)]
    per_user = [{k: v[a:b] for k, v in features.items()} for a, b in pairwise(bounds)]
    states = np.concatenate([last_states(model, per_user[i:i + STATES_BATCH])
                             for i in range(0, len(per_user), STATES_BATCH)])  # (N, D), sorted users
    order = pd.Index(user[starts]).get_indexer(users)  # back to latest-buyer-first
    log.info("list tables: customer index of %d recent buyers", len(users))
    return {"customer_vectors": unit_rows(states[order]), "customer_purchases": purchases}
