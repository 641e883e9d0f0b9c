"""Item-to-item transition evidence (what followed what in training sessions), stored as tensors.

V-SKNN beats a small sequence model on sparse data because it reads exact co-occurrence. The model
keeps, for every product, its top-M successors and predecessors in training sessions with their counts
(`transition_table`); `SessionSignalsModel.product_logits` adds a learned weight times log1p(count)
for the last few products of the history. Built once from training pairs, saved in the weights file.
"""
from __future__ import annotations

import torch


def transition_table(src: torch.Tensor, dst: torch.Tensor, n_products: int, m: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(E,) product ids followed by (E,) product ids -> top-M successors (P, M) ids and (P, M) counts.

    Rows with fewer than M successors are padded with id 0 (PAD, never recommended) and count 0.
    """
    key = src.long() * n_products + dst.long()  # (E,)
    pairs, counts = torch.unique(key, return_counts=True)  # (U,)
    a, b = pairs // n_products, pairs % n_products
    # Sort by (row, -count), then keep the first M of each row.
    order = torch.argsort(a * (counts.max() + 1) - counts, stable=True)
    a, b, counts = a[order], b[order], counts[order]
    first = torch.searchsorted(a, a, right=False)  # (U,) first index of each row's block
    rank = torch.arange(len(a)) - first
    keep = rank < m
    ids = torch.zeros(n_products, m, dtype=torch.long)
    cnt = torch.zeros(n_products, m, dtype=torch.float32)
    ids[a[keep], rank[keep]] = b[keep]
    cnt[a[keep], rank[keep]] = counts[keep].float()
    return ids, cnt
