"""`similar`: products close to the one just viewed ("more like this"): the cosine of the model's learned
product vectors, plus bonuses for the same category, the same brand and the same price band.

The vectors are normalised once at load; a request costs one (P,) row of dot products and three (P,)
comparisons. The anchor is the latest viewed product the model knows.
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

    def anchor(self, history: ShopperHistory) -> int | None:
        for event in reversed(history.events):
            if event.event_type == "view":
                known = self.catalogue.known_product_ids({event.product_id})
                if len(known):
                    return int(known[0])
        return None

    def scores(self, anchor: int) -> np.ndarray:
        """(P,) similarity to the anchor; the anchor itself is -inf (never its own neighbour)."""
        score = self.vectors @ self.vectors[anchor]  # (P,)
        if self.category[anchor] >= N_RESERVED:  # an unknown category is no kind
            score += SAME_CATEGORY * (self.category == self.category[anchor])
        if self.brand[anchor] >= N_RESERVED:
            score += SAME_BRAND * (self.brand == self.brand[anchor])
        with np.errstate(invalid="ignore"):
            score += SAME_PRICE_BAND * (np.abs(self.log_price - self.log_price[anchor]) <= np.log(PRICE_BAND))
        score[anchor] = -np.inf
        return score
