"""The tastes oracle: each customer's latent interests, what the `similar` and `people_like_you` lists are
measured against (benchmarks/flavours/).

One row per customer: the categories they browse, most weighted first, with their browse weights (summing
to 1), their favourite brands (viewed brand_view_boost times more often, accepted more readily) and their
price sensitivity. Category and brand are the true ones, also for products whose category or brand the
shop does not record.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from events.simulator.catalogue import Catalogue
from events.simulator.customers import Customers

TASTES_FILE = "oracle_tastes.parquet"
TASTES_SCHEMA = pa.schema([
    pa.field("user_id", pa.string(), nullable=False),
    pa.field("categories", pa.list_(pa.string()), nullable=False),
    pa.field("category_weights", pa.list_(pa.float64()), nullable=False),
    pa.field("favourite_brands", pa.list_(pa.string()), nullable=False),
    pa.field("price_sensitivity", pa.float64(), nullable=False),
])


def tastes_table(customers: Customers, catalogue: Catalogue, user_ids: pa.Array) -> pa.Table:
    order = np.argsort(-customers.slot_weight, axis=1, kind="stable")            # (n, S) most weighted first
    category = np.take_along_axis(customers.slot_category, order, axis=1)
    weight = np.take_along_axis(customers.slot_weight, order, axis=1)
    names = np.asarray(catalogue.category_names, dtype=object)
    brand_names = np.asarray(catalogue.brand_names, dtype=object)
    used = category >= 0
    return pa.Table.from_arrays([
        user_ids,
        pa.array([names[c[u]].tolist() for c, u in zip(category, used)], pa.list_(pa.string())),
        pa.array([w[u].tolist() for w, u in zip(weight, used)], pa.list_(pa.float64())),
        # Drawn with replacement: a customer may have fewer distinct favourites than favourite_brands.
        pa.array([list(dict.fromkeys(brand_names[b].tolist())) for b in customers.favourite_brands],
                 pa.list_(pa.string())),
        pa.array(customers.price_sensitivity, pa.float64()),
    ], schema=TASTES_SCHEMA)
