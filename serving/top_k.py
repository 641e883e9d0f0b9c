"""Top-k of a batch of score rows (products, categories or brands), best first.

Rows the model scored go through one batched `torch.topk`. Rows of a shopper without history all hold
the same prior (popularity, category or brand shares), so its order is sorted once at load, ties by id
as offline, and such a row is a slice of it.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from models.vocab import N_RESERVED

Ranked = tuple[np.ndarray, np.ndarray]  # (ids, scores), each (<= k,)


class Ranker:
    def __init__(self, prior: np.ndarray):
        """prior: (N,) what a shopper without history gets; PAD and UNK are never ranked."""
        self.prior = prior
        order = np.argsort(-prior, kind="stable")
        self.prior_order = order[order >= N_RESERVED]

    def top(self, scores: np.ndarray, modelled: Sequence[bool], ks: Sequence[int],
            allowed: Sequence[np.ndarray | None]) -> list[Ranked]:
        """scores: (B, N), rows of unmodelled shoppers ignored; allowed[i]: (N,) bool or None for all.
        Masks are written into `scores`. Fewer than k come back when fewer are allowed."""
        out: list[Ranked] = []
        rows = [i for i, m in enumerate(modelled) if m]
        if rows:
            ranked = torch.from_numpy(scores)  # (B, N), shares memory
            ranked[:, :N_RESERVED] = -torch.inf
            for i in rows:
                if allowed[i] is not None:
                    ranked[i, torch.from_numpy(~allowed[i])] = -torch.inf
            values, ids = (t.numpy() for t in torch.topk(ranked, min(max(ks[i] for i in rows), ranked.shape[1]), dim=1))
        for i, k in enumerate(ks):
            if modelled[i]:
                keep = np.isfinite(values[i, :k])
                out.append((ids[i, :k][keep], values[i, :k][keep]))
            else:
                order = self.prior_order if allowed[i] is None else self.prior_order[allowed[i][self.prior_order]]
                out.append((order[:k], self.prior[order[:k]]))
        return out
