"""Catalogue ids -> answer items (product, score, category, brand): one conversion for `products` and every
list of catalogue ids.

Each product's three names are looked up once at load into (P,) arrays, so a list of k items is three
array reads and `tolist` (Python strings and floats), not 3k scalar reads of numpy arrays.
"""
from __future__ import annotations

import numpy as np

from serving.product_groups import ProductGroups


class CatalogueItems:
    def __init__(self, catalogue: ProductGroups):
        encoder = catalogue.encoder
        self.names = catalogue.product_names  # (P,) object, None for PAD/UNK
        self.categories = catalogue.category_names[encoder.product_category]  # (P,) object
        self.brands = catalogue.brand_names[encoder.product_brand]  # (P,) object

    def items(self, ids: np.ndarray, scores: np.ndarray) -> list[dict]:
        """ids (k,), scores (k,) -> k dicts with the keys of `ProductScore` and `ListItem` (the same four)."""
        return [{"product_id": p, "score": s, "category": c, "brand": b} for p, s, c, b in
                zip(self.names[ids].tolist(), scores.tolist(), self.categories[ids].tolist(), self.brands[ids].tolist())]
