"""Next-product losses: the full softmax, and a sampled softmax for catalogues too large for it.

The sampled softmax estimates the full softmax's normaliser from three kinds of candidates:
- the true product, scored exactly;
- each position's recent products (the history that gets the recency bonus), scored exactly: the
  full softmax always weighs them against the target, and a popularity sample almost never draws
  them, so without them the learned recency bonus is pushed up unopposed;
- S negatives shared by the whole batch, drawn with replacement from a proposal Q (training popularity
  raised to `power`, see `proposal`) and weighted by 1 / (S q) (log-Q correction, Bengio & Senecal
  2008; Yi et al. 2019), so that together they are an unbiased estimate of the rest of the catalogue's mass. Draws of a product already
  scored exactly (the target, a recent product) are dropped, every copy of them.
It never builds the (positions x catalogue) logits: memory is N x (1 + K + S) whatever the catalogue
size. When the sample is the whole catalogue once under a uniform Q, it equals the full softmax.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from models.vocab import N_RESERVED


def full_softmax_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the whole catalogue: (N, P), (N,) -> scalar."""
    return F.cross_entropy(logits.float(), target)


def sampled_softmax_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, negatives: torch.Tensor,
                         target: torch.Tensor, log_q: torch.Tensor, recent_scores: torch.Tensor,
                         recent_ids: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean sampled cross-entropy (per row with reduction="none": (N,), an estimate of -log P(target)).

    pos_scores (N,) of the true products target (N,); neg_scores (N, S) of the shared negatives (S,);
    recent_scores (N, K) of each row's recent products recent_ids (N, K); log_q (P,) the proposal.
    """
    neg = neg_scores - (log_q[negatives] + math.log(len(negatives)))  # (N, S): importance weight 1 / (S q)
    exact = torch.cat([target.unsqueeze(1), recent_ids], dim=1)  # (N, 1 + K) products scored exactly
    neg = neg.masked_fill(drawn_among(exact, negatives, len(log_q)), float("-inf"))
    # A recent product counts once, and not at all when it is PAD/UNK or the target itself.
    keep = first_occurrence(recent_ids) & (recent_ids >= N_RESERVED) & (recent_ids != target.unsqueeze(1))
    recent = recent_scores.masked_fill(~keep, float("-inf"))  # (N, K)
    logits = torch.cat([pos_scores.unsqueeze(1), recent, neg], dim=1).float()  # (N, 1 + K + S)
    per_row = torch.logsumexp(logits, dim=1) - logits[:, 0]  # (N,)
    return per_row if reduction == "none" else per_row.mean()


def drawn_among(ids: torch.Tensor, negatives: torch.Tensor, n_products: int) -> torch.Tensor:
    """(N, M) product ids per row, (S,) shared draws -> (N, S): is draw s one of row n's products?

    O(N M + N S) with fixed shapes and no host sync: each drawn product gets one representative column
    (duplicates share it), the rows mark the representatives of their products, and every draw reads
    its representative's mark.
    """
    S = len(negatives)
    column = torch.full((n_products,), S, dtype=torch.long, device=negatives.device)  # S: "not drawn"
    column[negatives] = torch.arange(S, device=negatives.device)
    marked = torch.zeros(ids.shape[0], S + 1, dtype=torch.bool, device=ids.device)  # (N, S + 1)
    marked.scatter_(1, column[ids], True)  # a scalar fill: advanced-index assignment of True would sync
    return marked.index_select(1, column[negatives])  # (N, S)


def first_occurrence(ids: torch.Tensor) -> torch.Tensor:
    """(N, K) -> (N, K) bool: True where the id does not appear earlier in its row."""
    same = ids.unsqueeze(2) == ids.unsqueeze(1)  # (N, K, K)
    earlier = torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool, device=ids.device).tril(-1)
    return ~(same & earlier).any(dim=2)


def proposal(log_popularity: torch.Tensor, power: float) -> torch.Tensor:
    """(P,) log popularity -> (P,) log Q with Q proportional to popularity ** power, reserved ids never drawn.

    power 1 draws by popularity, 0 uniformly; in between flattens the head so the tail is drawn too.
    """
    log_q = torch.where(log_popularity > -1e8, power * log_popularity.float(), torch.tensor(float("-inf")))
    return torch.log_softmax(log_q, dim=0).clamp_min(-1e9)


def sample_negatives(log_q: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(S,) product ids drawn with replacement from Q = softmax(log_q)."""
    return torch.multinomial(log_q.float().exp(), n, replacement=True, generator=generator)
