"""Next-product ranking metrics against the whole catalogue, with ties counted against the model.

A target's rank is 1 + the number of other items scoring at least as high (the pessimistic tie rule
of the official GRU4Rec evaluation): a model that scores everything equal gets rank = catalogue size,
never a lucky first place.
"""
from __future__ import annotations

import torch


TOP_K = 20  # the cut-off of every ranking metric (Recall@20, MRR@20, NDCG@20): offline, validation, peers

def pessimistic_rank(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, P) scores, (N,) target ids -> (N,) ranks starting at 1."""
    target_score = scores.gather(1, target.unsqueeze(1))  # (N, 1)
    at_least_as_high = (scores >= target_score).sum(dim=1)  # counts the target itself once
    return at_least_as_high


def rank_metrics(ranks: torch.Tensor, k: int = TOP_K) -> dict[str, float]:
    """Recall@k, MRR@k and NDCG@k from (N,) ranks (one relevant item per prediction)."""
    ranks = ranks.double()
    hit = ranks <= k
    n = max(len(ranks), 1)
    return {
        f"recall@{k}": hit.sum().item() / n,
        f"mrr@{k}": torch.where(hit, 1.0 / ranks, 0.0).sum().item() / n,
        f"ndcg@{k}": torch.where(hit, 1.0 / torch.log2(ranks + 1.0), 0.0).sum().item() / n,
    }


def chunked_ranks(scores_fn, query: torch.Tensor, history: torch.Tensor, target: torch.Tensor, n_items: int,
                  max_cells: int = 1 << 25) -> torch.Tensor:
    """Ranks for (N, D) queries without holding (N x catalogue) scores at once: rows in chunks.

    `scores_fn(query_chunk (n, D), history_chunk (n, K))` returns the chunk's (n, P) scores. At
    1,000,000 products a chunk is 33 rows (about 130 MB of float32 scores).
    """
    rows = max(1, max_cells // max(n_items, 1))
    return torch.cat([pessimistic_rank(scores_fn(query[i:i + rows], history[i:i + rows]), target[i:i + rows])
                      for i in range(0, len(query), rows)]) if len(query) else target.new_zeros(0)
