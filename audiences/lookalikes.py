"""The N customers nearest to the seeds in the model's learned representation (the encoder's state after
a customer's latest event), seeds excluded.

A customer's distance to the seeds is its cosine similarity to the nearest seed, found exactly with
chunked matrix products (torch): seeds x D floats stay in memory, candidates stream by partition, and
a running top-N keeps memory flat. Exact search costs candidates x seeds x D multiply-adds: 15 s for
8 x 10^10 on one thread (benchmarks/README.md); past that, a nearest-neighbour library.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

CHUNK = 4096  # candidates per matrix product: (CHUNK, seeds) floats at a time


def normalised(vectors: np.ndarray) -> np.ndarray:
    """(N, D) rows scaled to unit length (cosine similarity becomes a dot product)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class NearestToSeeds:
    def __init__(self, seed_ids: np.ndarray, seed_vectors: np.ndarray, size: int):
        """seed_vectors: (S, D) representations of the seeds (finite rows only)."""
        self.seed_ids = seed_ids
        self.seeds = torch.from_numpy(normalised(seed_vectors))  # (S, D)
        self.size = size
        self.best = pd.DataFrame({"user_id": pd.Series(dtype=str), "similarity": pd.Series(dtype="float64"),
                                  "nearest_seed": pd.Series(dtype=str)})

    def add(self, user_ids: np.ndarray, vectors: np.ndarray) -> None:
        """Candidates (not seeds, finite representations): (n,) ids, (n, D) vectors."""
        if not len(user_ids) or not len(self.seeds) or not self.size:
            return
        queries = torch.from_numpy(normalised(vectors))  # (n, D)
        similarity, nearest = np.empty(len(user_ids)), np.empty(len(user_ids), dtype=np.int64)
        for first in range(0, len(queries), CHUNK):
            best = (queries[first:first + CHUNK] @ self.seeds.T).max(dim=1)  # over (c, S)
            similarity[first:first + CHUNK] = best.values.double().numpy()
            nearest[first:first + CHUNK] = best.indices.numpy()
        found = pd.DataFrame({"user_id": user_ids, "similarity": similarity, "nearest_seed": self.seed_ids[nearest]})
        merged = pd.concat([self.best, found], ignore_index=True)
        # Ties by user id, so the file does not depend on the partition order.
        self.best = merged.sort_values(["similarity", "user_id"], ascending=[False, True], kind="stable").head(self.size)

    def result(self) -> pd.DataFrame:
        return self.best.reset_index(drop=True)
