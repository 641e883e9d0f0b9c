"""Priors from the training window's event counts per id: the popularity table (the sampled softmax's
proposal and the bundle's ranking for shoppers without history) and the category / brand shares.

Both data paths (in memory and streamed) hand these functions the same id counts
(`EncoderCounts.id_counts`), so each table is computed by one piece of code.
"""
from __future__ import annotations

import numpy as np

from models.vocab import N_RESERVED

SMOOTHING = 1e-3  # products seen only in rare ways stay rankable


def popularity_log_prob(product_counts: np.ndarray) -> np.ndarray:
    """(P,) events per product id -> (P,) log share; PAD and UNK get -1e9 (never drawn, never ranked)."""
    c = product_counts.astype(np.float64) + SMOOTHING
    c[:N_RESERVED] = 0.0
    with np.errstate(divide="ignore"):
        log_p = np.log(c / c.sum())
    return np.where(np.isfinite(log_p), log_p, -1e9)


def shares(counts: np.ndarray) -> list[float]:
    """(V,) events per id -> each id's share among the real ids (PAD and UNK zeroed)."""
    c = counts.astype(np.float64)
    c[:N_RESERVED] = 0.0
    return (c / max(c.sum(), 1.0)).tolist()
