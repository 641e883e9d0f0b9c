"""Next-product losses: the full softmax, and a sampled softmax for catalogues too large for it.

The sampled softmax scores each position's true product against S negatives shared by the whole
batch, drawn from the training popularity distribution Q, and subtracts log Q from every logit
(the log-Q correction of Bengio & Senecal / Yi et al. 2019) so that the sampled loss stays an
unbiased stand-in for the full softmax instead of over-punishing popular products. It never builds
the (positions x catalogue) logits: memory is (N x S) whatever the catalogue size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def full_softmax_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the whole catalogue: (N, P), (N,) -> scalar."""
    return F.cross_entropy(logits.float(), target)


def sampled_softmax_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, target: torch.Tensor,
                         negatives: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """pos_scores (N,) of the true products, neg_scores (N, S) of the shared negatives (S,), log_q (P,) -> scalar."""
    pos = pos_scores - log_q[target]  # (N,)
    neg = neg_scores - log_q[negatives]  # (N, S)
    # A sampled "negative" that is the row's own target is not a negative (accidental hit).
    neg = neg.masked_fill(negatives.unsqueeze(0) == target.unsqueeze(1), float("-inf"))
    logits = torch.cat([pos.unsqueeze(1), neg], dim=1).float()  # (N, 1 + S)
    return F.cross_entropy(logits, torch.zeros(len(target), dtype=torch.long, device=target.device))


def sample_negatives(log_q: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(S,) product ids drawn with replacement from Q = softmax(log_q)."""
    return torch.multinomial(log_q.float().exp(), n, replacement=True, generator=generator)
