"""`similar`: products of the same kind as the one just viewed ("more like this"): the products of its
category and of its brand, ranked by the cosine of the model's learned product vectors plus bonuses for
the same category, the same brand and the same price band, plus the product's popularity: shoppers
compare within a kind mostly among its popular products (on the simulator, ranking the kind by vectors
alone found what shoppers looked at next barely better than random products of the category:
benchmarks/README.md).

Candidates are the members of two groups, not the catalogue: a (P,) row of dot products and its sort per
request would cost more than the model's forward pass at 50,000 products (measured:
benchmarks/README.md). The vectors are normalised and the groups built once at load. The anchor is the
latest viewed product the model knows; one whose category and brand are both unknown is compared with the
whole catalogue.

An anchor's ranking depends on nothing else, so the last CACHED_ANCHORS rankings are kept: views follow
popularity, and most requests find their anchor's ranking made (the filters apply after, per request).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from models.vocab import N_RESERVED
from serving.history import ShopperHistory
from serving.product_groups import ProductGroups

SAME_CATEGORY = 0.5
SAME_BRAND = 0.2
SAME_PRICE_BAND = 0.2
POPULARITY = 0.25
"""Per nat of the training window's log popularity: ten times the views is worth about one category bonus."""
PRICE_BAND = 1.5
"""Prices within this factor of the anchor's are one band (both known: the bundle's median prices)."""
CACHED_ANCHORS = 4096
CACHED_CANDIDATES = 1000
"""Rankings kept: the last 4,096 anchors' of at most 1,000 candidates (12 bytes each), at most 50 MB; at
50,000 products of 1,000 categories and 2,000 brands a ranking is ~75 candidates. Larger ones (an anchor of
no known kind is ranked against the whole catalogue) are computed each time."""


class Similar:
    def __init__(self, product_table: torch.Tensor, catalogue: ProductGroups, price: np.ndarray | None,
                 log_popularity: np.ndarray):
        table = product_table.detach().float()  # (P, D)
        self.popularity = POPULARITY * np.asarray(log_popularity, dtype=np.float64)  # (P,)
        self.vectors = torch.nn.functional.normalize(table, dim=1).numpy()  # (P, D)
        self.category = catalogue.encoder.product_category  # (P,)
        self.brand = catalogue.encoder.product_brand  # (P,)
        self.log_price = np.log(price) if price is not None else np.full(catalogue.n_products, np.nan)  # (P,)
        self.catalogue = catalogue
        self.everything = np.arange(N_RESERVED, catalogue.n_products)
        self._cached = lru_cache(maxsize=CACHED_ANCHORS)(self._ranked)
        sizes = np.array([len(g) for g in catalogue.products_of_category])[self.category] + \
            np.array([len(g) for g in catalogue.products_of_brand])[self.brand]  # (P,) at most the candidates
        sizes[(self.category < N_RESERVED) & (self.brand < N_RESERVED)] = catalogue.n_products
        self.cacheable = sizes <= CACHED_CANDIDATES  # (P,)

    def anchor(self, history: ShopperHistory) -> int | None:
        for event in reversed(history.events):
            if event.event_type == "view":
                known = self.catalogue.known_product_ids({event.product_id})
                if len(known):
                    return int(known[0])
        return None

    def candidates(self, anchor: int) -> tuple[np.ndarray, np.ndarray]:
        """(c,) ids and (c,) scores, best first (ties by id), read-only (they may be cached); the anchor itself
        is never its own neighbour."""
        return self._cached(anchor) if self.cacheable[anchor] else self._ranked(anchor)

    def _ranked(self, anchor: int) -> tuple[np.ndarray, np.ndarray]:
        category, brand = self.category[anchor], self.brand[anchor]
        groups = [self.catalogue.products_of_category[category]] if category >= N_RESERVED else []
        if brand >= N_RESERVED:
            of_brand = self.catalogue.products_of_brand[brand]
            groups.append(of_brand[self.category[of_brand] != category] if groups else of_brand)  # no one twice
        ids = np.concatenate(groups) if groups else self.everything  # an unknown kind: all
        ids = ids[ids != anchor]
        score = self.vectors[ids] @ self.vectors[anchor] + self.popularity[ids]  # (c,)
        if category >= N_RESERVED:  # an unknown category is no kind
            score += SAME_CATEGORY * (self.category[ids] == category)
        if brand >= N_RESERVED:
            score += SAME_BRAND * (self.brand[ids] == brand)
        with np.errstate(invalid="ignore"):  # unknown prices: no band
            score += SAME_PRICE_BAND * (np.abs(self.log_price[ids] - self.log_price[anchor]) <= np.log(PRICE_BAND))
        order = np.lexsort((ids, -score))
        ids, score = ids[order], score[order].astype(np.float32)
        ids.flags.writeable = score.flags.writeable = False
        return ids, score
