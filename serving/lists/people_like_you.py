"""`people_like_you`: what the customers with the nearest learned representations bought recently
(lookalike recommendations).

The shopper's representation is the one the model computed for this request (`Scores.representation`);
the bundle's customer index (`training/list_tables.py`, `models.customer_index`) holds the recent buyers'
states and purchases. All requests of a batch that ask for the list are compared with the index in one
matrix product. A shopper who is in the index finds themselves among the neighbours: their own purchases
count too, which `filters.exclude_purchased` removes when their events show them.
"""
from __future__ import annotations

import numpy as np

from models.customer_index import NEIGHBOURS, nearest, search_layout, their_purchases

NO_INDEX = "the model's bundle has no customer index (trained on streamed data, or before it existed)"
NO_HISTORY = "no events: no representation to compare with other customers"


class PeopleLikeYou:
    def __init__(self, arrays: dict[str, np.ndarray], neighbours: int = NEIGHBOURS):
        self.neighbours = neighbours
        vectors = arrays.get("customer_vectors")  # (N, D) unit rows, or None
        self.columns = None if vectors is None or not len(vectors) else search_layout(vectors)  # (D, N)
        self.purchases = arrays.get("customer_purchases")  # (N, R) product ids, PAD-padded

    def candidates(self, representation: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, str | None]]:
        """representation (b, D), NaN rows for empty histories -> per row (c,) ids and (c,) scores best
        first, or empty with the reason."""
        empty = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if self.columns is None:
            return [(*empty, NO_INDEX)] * len(representation)
        known = ~np.isnan(representation).any(axis=1)  # (b,)
        out: list[tuple[np.ndarray, np.ndarray, str | None]] = [(*empty, NO_HISTORY)] * len(representation)
        if known.any():
            rows, similarity = nearest(representation[known], self.columns, self.neighbours)  # (k, n) each
            for i, r, s in zip(np.flatnonzero(known), rows, similarity):
                ids, scores = their_purchases(r, s, self.purchases)
                out[i] = (ids, scores, None if len(ids) else "the nearest customers bought nothing the model knows")
        return out
