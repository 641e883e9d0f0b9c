"""What serving derives from the bundle's vocabularies once at load: decoding arrays and the members of
each category and brand (the filters' masks), so a request never searches them."""
from __future__ import annotations

import numpy as np

from models.encoding import EventEncoder
from models.vocab import N_RESERVED


def members_by_group(group_of: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """(P,) group id per product -> for each group id, the product ids in it (ascending)."""
    order = np.argsort(group_of, kind="stable")
    bounds = np.searchsorted(group_of[order], np.arange(n_groups + 1))
    return [order[bounds[g]:bounds[g + 1]] for g in range(n_groups)]


class ProductGroups:
    def __init__(self, encoder: EventEncoder):
        self.encoder = encoder
        self.n_products = len(encoder.products)
        # (P,) tokens, None for PAD/UNK: decoding a top-k list is then k array reads.
        self.product_names = np.array([None] * N_RESERVED + encoder.products.tokens, dtype=object)
        self.category_names = np.array([None] * N_RESERVED + encoder.categories.tokens, dtype=object)
        self.brand_names = np.array([None] * N_RESERVED + encoder.brands.tokens, dtype=object)
        self.products_of_category = members_by_group(encoder.product_category, len(encoder.categories))
        self.products_of_brand = members_by_group(encoder.product_brand, len(encoder.brands))

    def known_product_ids(self, tokens: set[str]) -> np.ndarray:
        """Ids of those tokens the model knows (unknown products can never be recommended anyway)."""
        return self.encoder.products.known_ids(tokens)
