"""The bundle's tables for the endpoint's lists by purpose (serving/lists/): computed once from the events
the encoder was fitted on, saved beside the weights (`models.bundle.LIST_ARRAYS`), never per request.

- `complement_ids`, `complement_score` (P, M): each product's top-M co-purchase complements
  (`models.complements`: carts and purchases of one session form a basket);
- `product_price` (P,): each product's median price in that window, NaN if never priced (the price band
  of `similar`).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from models.complements import complement_table
from models.encoding import EventEncoder
from models.vocab import N_RESERVED

log = logging.getLogger(__name__)

COMPLEMENTS_PER_PRODUCT = 20
BASKET_EVENTS = ("cart", "purchase")


def list_arrays(events: pd.DataFrame | None, encoder: EventEncoder) -> dict[str, np.ndarray]:
    """Canonical events of the encoder's window -> the arrays; {} when the run has no events in memory
    (streamed data: the service then answers `complementary` empty with a note saying why)."""
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
    return {"complement_ids": ids, "complement_score": score, "product_price": price}
