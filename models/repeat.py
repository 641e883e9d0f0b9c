"""Repeat/explore mixture over the products a shopper just saw (a pointer, as in RepeatNet, Ren et al. 2019).

On sparse catalogues S-POP, which ranks nothing but the session's own products by count, beats the
plain next-product head: most next events revisit a product of the session, and a softmax over tens of
thousands of learned product vectors gives a revisit too little mass. This head makes revisits explicit:

    P(next = i) = p_repeat * P_repeat(i) + (1 - p_repeat) * P_explore(i)

P_explore is the softmax of the catalogue scores the model already has (tied embeddings, recency bonus,
transition evidence); P_repeat is an attention over the last K positions, summed per product, so a
product seen three times collects three positions' mass (S-POP's count) and a learned bias per recency
step says how much recent beats old; p_repeat = sigmoid(w . h + b) is a gate read from the state.
The result is a log-probability over the whole catalogue, so the full-softmax loss and every ranking
read it as they read logits (log_softmax of it is itself).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.losses import first_occurrence
from models.vocab import N_RESERVED

# Finite stand-in for -inf inside logsumexp / logaddexp: an input of -inf there makes a NaN gradient.
NEG = -1e9


class RepeatHead(nn.Module):
    def __init__(self, d: int, k: int):
        super().__init__()
        self.query = nn.Linear(d, d)
        self.step_bias = nn.Parameter(torch.zeros(k))  # recency prior of the pointer, per step back
        self.gate = nn.Linear(d, 1)

    def pointer(self, h: torch.Tensor, history: torch.Tensor, keys: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """h (N, D), history (N, K) recent product ids (PAD/UNK: nothing to repeat), keys (N, K, D) their output
        vectors -> log attention per position (N, K), valid (N, K), log p_repeat (N,), log (1 - p_repeat) (N,)."""
        K = history.shape[1]
        valid = history >= N_RESERVED  # (N, K)
        att = torch.einsum("nd,nkd->nk", self.query(h), keys) / math.sqrt(h.shape[-1]) + self.step_bias[:K]
        log_a = torch.log_softmax(att.float().masked_fill(~valid, NEG), dim=-1)  # (N, K) pointer over positions
        g = self.gate(h).squeeze(-1).float()  # (N,)
        can_repeat = valid.any(dim=1)  # a history of only PAD/UNK leaves the explore distribution alone
        log_explore = torch.where(can_repeat, F.logsigmoid(-g), torch.zeros_like(g))  # (N,)
        return log_a, valid, F.logsigmoid(g), log_explore

    def forward(self, h: torch.Tensor, history: torch.Tensor, keys: torch.Tensor,
                explore_logits: torch.Tensor) -> torch.Tensor:
        """`pointer`'s inputs and explore_logits (N, P), PAD/UNK at -inf -> (N, P) log-probabilities."""
        log_a, valid, log_repeat, log_explore = self.pointer(h, history, keys)
        # A product's repeat mass is the sum over the positions holding it.
        same = (history.unsqueeze(2) == history.unsqueeze(1)) & valid.unsqueeze(1)  # (N, K, K)
        log_item = torch.logsumexp(log_a.unsqueeze(1).masked_fill(~same, NEG), dim=-1)  # (N, K)
        base = torch.log_softmax(explore_logits.float(), dim=-1) + log_explore.unsqueeze(1)  # (N, P)
        at_history = torch.where(valid, base.gather(1, history), torch.zeros_like(log_item))  # (N, K), finite
        mixed = torch.logaddexp(at_history, log_repeat.unsqueeze(1) + log_item)  # (N, K)
        # Each product once (its first position), so a repeated id is not added twice.
        delta = (mixed - at_history) * (first_occurrence(history) & valid)  # (N, K)
        return base.scatter_add(1, history, delta.to(base.dtype))

    def at_targets(self, h: torch.Tensor, history: torch.Tensor, keys: torch.Tensor, log_explore_target: torch.Tensor,
                   target: torch.Tensor) -> torch.Tensor:
        """The mixture's log-probability of each target (N,) given its explore log-probability (N,): what the
        sampled softmax trains on, where the (N, P) explore distribution is only estimated."""
        log_a, valid, log_repeat, log_explore = self.pointer(h, history, keys)
        log_target = torch.logsumexp(log_a.masked_fill(~(valid & (history == target.unsqueeze(1))), NEG), dim=-1)
        return torch.logaddexp(log_explore_target.float() + log_explore, log_repeat + log_target)  # (N,)
