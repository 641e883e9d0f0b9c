"""Products bought together: co-occurrence in purchase baskets and carts, kept as a top-M table per product.

A basket is the set of products carted or purchased in one session (views are browsing, not buying
together). Two products score by how often they share a basket, normalised by how often each is in a
basket at all (cosine over basket membership), so a best-seller that is in every basket does not become
everyone's complement; raw counts are the baseline this is measured against (benchmarks/flavours/).
Training computes the table once and saves it in the bundle; serving sums the rows of a cart's products.
"""
from __future__ import annotations

import numpy as np

from models.vocab import N_RESERVED

MAX_BASKET = 100
"""Distinct products per basket counted: pairs grow with the square of a basket, and a wholesale order of
hundreds of lines says little about which two go together."""


def basket_pairs(basket: np.ndarray, product: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E,) basket key and (E,) product id of each line -> every ordered pair (a, b), a != b, sharing a
    basket, each once per basket, and (U,) the distinct (basket, product) products (for basket counts).

    Lines with a reserved product id (PAD, UNK) and baskets over MAX_BASKET distinct products are skipped."""
    keep = product >= N_RESERVED
    lines = np.unique(np.stack([basket[keep], product[keep]], axis=1), axis=0)  # (U, 2) distinct, sorted by basket
    if not len(lines):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    starts = np.flatnonzero(np.r_[True, lines[1:, 0] != lines[:-1, 0]])
    sizes = np.diff(np.r_[starts, len(lines)])
    src, dst = [], []
    for start, size in zip(starts[sizes > 1], sizes[sizes > 1]):
        if size > MAX_BASKET:
            continue
        items = lines[start:start + size, 1]
        a, b = np.meshgrid(items, items, indexing="ij")  # (n, n)
        off = a != b
        src.append(a[off])
        dst.append(b[off])
    counted = np.concatenate([lines[s:s + n, 1] for s, n in zip(starts, sizes) if n <= MAX_BASKET] or [np.zeros(0)])
    if not src:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), counted.astype(np.int64)
    return np.concatenate(src).astype(np.int64), np.concatenate(dst).astype(np.int64), counted.astype(np.int64)


def complement_table(basket: np.ndarray, product: np.ndarray, n_products: int, m: int,
                     normalise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(E,) basket keys and product ids -> (P, M) int32 complement ids and (P, M) float32 scores, best first.

    Score: shared baskets / sqrt(baskets of a * baskets of b) (`normalise`), or the raw count. Rows with
    fewer than M complements are padded with id 0 (PAD, never recommended) and score 0."""
    src, dst, counted = basket_pairs(basket, product)
    ids = np.zeros((n_products, m), dtype=np.int32)
    scores = np.zeros((n_products, m), dtype=np.float32)
    if not len(src):
        return ids, scores
    pairs, shared = np.unique(src * n_products + dst, return_counts=True)  # (U,)
    a, b = pairs // n_products, pairs % n_products
    value = shared.astype(np.float64)
    if normalise:
        in_baskets = np.bincount(counted, minlength=n_products).astype(np.float64)  # (P,)
        value = value / np.sqrt(in_baskets[a] * in_baskets[b])
    order = np.lexsort((b, -value, a))  # by row, best first, ties by id
    a, b, value = a[order], b[order], value[order]
    rank = np.arange(len(a)) - np.searchsorted(a, a)  # position inside its row
    keep = rank < m
    ids[a[keep], rank[keep]] = b[keep]
    scores[a[keep], rank[keep]] = value[keep]
    return ids, scores


def complements_of(basket_ids: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Products of one basket (n,) -> candidate ids (c,) and their summed scores (c,), best first; the basket's
    own products are never their own complements."""
    rows_ids, rows_scores = ids[basket_ids].ravel(), scores[basket_ids].ravel()  # (n * M,)
    keep = (rows_ids >= N_RESERVED) & ~np.isin(rows_ids, basket_ids)
    candidates, where = np.unique(rows_ids[keep], return_inverse=True)
    total = np.bincount(where, weights=rows_scores[keep], minlength=len(candidates))
    order = np.lexsort((candidates, -total))
    return candidates[order], total[order].astype(np.float32)
