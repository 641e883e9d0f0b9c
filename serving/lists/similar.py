"""`similar`: products of the same kind as the one just viewed ("more like this"): the products of its
category and of its brand, ranked by the cosine of the model's learned product vectors plus bonuses for
the same category, the same brand and the same price band.

Candidates are the members of two groups, not the catalogue: a (P,) row of dot products and its sort per
request would cost more than the model's forward pass at 50,000 products (measured:
benchmarks/README.md). The vectors are normalised and the groups built once at load. The anchor is the
latest viewed product the model knows; one whose category and brand are both unknown is compared with the
whole catalogue.
"""
from __future__ import annotations

import numpy as np
import torch

from models.vocab import N_RESERVED
from serving.history import ShopperHistory
from serving.product_groups import ProductGroups

SAME_CATEGORY = 0.5
SAME_BRAND = 0.2
SAME_PRICE_BAND = 0.2
PRICE_BAND = 1.5
"""Prices within this factor of the anchor's are one band (both known: the bundle's median prices)."""


class Similar:
    def __init__(self, product_table: torch.Tensor, catalogue: ProductGroups, price: np.ndarray | None):
        table = product_table.detach().float()  # (P, D)
        self.vectors = torch.nn.functional.normalize(table, dim=1).numpy()  # (P, D)
        self.category = catalogue.encoder.product_category  # (P,)
        self.brand = catalogue.encoder.product_brand  # (P,)
        self.log_price = np.log(price) if price is not None else np.full(catalogue.n_products, np.nan)  # (P,)
        self.catalogue = catalogue
        self.everything = np.arange(N_RESERVED, catalogue.n_products)

    def anchor(self, history: ShopperHistory) -> int | None:
        for event in reversed(history.events):
            if event.event_type == "view":
                known = self.catalogue.known_product_ids({event.product_id})
                if len(known):
                    return int(known[0])
        return None

    def candidates(self, anchor: int) -> tuple[np.ndarray, np.ndarray]:
        """(c,) ids and (c,) scores, best first (ties by id); the anchor itself is never its own neighbour."""
        category, brand = self.category[anchor], self.brand[anchor]
        groups = [self.catalogue.products_of_category[category]] if category >= N_RESERVED else []
        groups += [self.catalogue.products_of_brand[brand]] if brand >= N_RESERVED else []
        ids = np.unique(np.concatenate(groups)) if groups else self.everything  # an unknown kind: all
        ids = ids[ids != anchor]
        score = self.vectors[ids] @ self.vectors[anchor]  # (c,)
        if category >= N_RESERVED:  # an unknown category is no kind
            score += SAME_CATEGORY * (self.category[ids] == category)
        if brand >= N_RESERVED:
            score += SAME_BRAND * (self.brand[ids] == brand)
        with np.errstate(invalid="ignore"):  # unknown prices: no band
            score += SAME_PRICE_BAND * (np.abs(self.log_price[ids] - self.log_price[anchor]) <= np.log(PRICE_BAND))
        order = np.lexsort((ids, -score))
        return ids[order], score[order].astype(np.float32)
