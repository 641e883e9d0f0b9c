"""Customers by learned representation, for the `people_like_you` list: what the shoppers nearest to this
one bought recently (lookalike recommendations).

Training stores an index of recent buyers (`training/list_tables.py`): each one's representation, the
encoder's state after their latest event as `models.predictor` computes it for a shopper, normalised to
unit length, and their latest distinct purchases. A request's own state is compared with every row (an
exact cosine: one (b, D) x (D, N) product, small at N = 20,000, and a top-n) and the neighbours' purchases are
counted, each weighted by the neighbour's similarity.
"""
from __future__ import annotations

import numpy as np
import torch

from models.vocab import N_RESERVED

NEIGHBOURS = 50
"""Nearest customers whose purchases are counted: enough to outvote one customer's idiosyncrasy, few
enough to stay "people like you" rather than everyone."""


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, D) float32 rows of length 1 (a zero row stays zero: it is nobody's neighbour)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # (N, 1)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def search_layout(index: np.ndarray) -> np.ndarray:
    """(N, D) unit rows -> (D, N) contiguous float32, the layout `nearest` reads: built once at load, it halves
    the matrix product at a batch of 16 against multiplying by the (N, D) rows' transposed view."""
    return np.ascontiguousarray(index.T, dtype=np.float32)


def nearest(queries: np.ndarray, columns: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """queries (b, D), the index as (D, N) columns (`search_layout`) -> (b, n') row numbers of the nearest by
    cosine, best first, and (b, n') their similarities; n' = min(n, N)."""
    similarity = unit_rows(queries) @ columns  # (b, N)
    n = min(n, columns.shape[1])
    # torch.topk keeps a heap of n: 5-7x faster than np.argpartition over N = 20,000 (benchmarks/README.md).
    top = torch.topk(torch.from_numpy(similarity), n, dim=1, sorted=False).indices.numpy()  # (b, n)
    top_sim = np.take_along_axis(similarity, top, axis=1)  # (b, n)
    order = np.lexsort((top, -top_sim), axis=1)  # best first, ties by row
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sim, order, axis=1)


def their_purchases(rows: np.ndarray, similarity: np.ndarray, purchases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One shopper's neighbours: rows (n,), similarity (n,), the index's purchases (N, R) (PAD-padded) ->
    product ids (c,) and scores (c,), best first: the summed similarity of the neighbours who bought each
    (a product bought by more, and by nearer, neighbours ranks higher), ties by id.

    Per shopper on purpose: one count for a batch, keyed by (shopper, product), measured 1.5x slower at 16
    shoppers (its sorts outgrow 16 small ones)."""
    bought = purchases[rows]  # (n, R)
    weight = np.broadcast_to(similarity[:, None], bought.shape)  # (n, R)
    keep = bought >= N_RESERVED
    candidates, where = np.unique(bought[keep], return_inverse=True)
    total = np.bincount(where, weights=weight[keep], minlength=len(candidates))  # (c,)
    order = np.lexsort((candidates, -total))
    return candidates[order].astype(np.int64), total[order].astype(np.float32)
