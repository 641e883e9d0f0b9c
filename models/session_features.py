"""Session and customer aggregates computed inside the model from the window's own features (wide side inputs).

The intent baseline (LightGBM) and the churn baseline (RFM) live on counts: events, carts and removes
so far in the session, net cart size, purchases and sessions so far. A GRU over 50 events can count,
but learns it slowly from 100k events; handing it the counts directly is the "wide" half of a wide &
deep model. Everything is causal (position t reads positions <= t of its own window) and computed in
PyTorch from the integer features, so training, evaluation and serving compute exactly the same thing.
"""
from __future__ import annotations

import torch

from models.encoding import GAP_EDGES_S, N_GAP_BUCKETS
from models.vocab import N_RESERVED

# Event type ids: the encoder's vocabulary starts with these core types, right after PAD and UNK.
VIEW, CART, REMOVE, PURCHASE = N_RESERVED, N_RESERVED + 1, N_RESERVED + 2, N_RESERVED + 3
N_SIDE = 11
SIDE_NET_CART = 9
"""side_features' column of log1p(net cart size): products added minus removed in the session so far."""


def session_starts(x: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, L) bool: the events that start a session, and each window's first event (its session's first seen)."""
    pos = torch.arange(x["new_session"].shape[1], device=x["new_session"].device)
    return (x["new_session"] == 2) | (pos == 0)


def session_start_positions(starts: torch.Tensor) -> torch.Tensor:
    """(B, L) bool session starts -> (B, L) the position of each event's session start, carried forward."""
    pos = torch.arange(starts.shape[1], device=starts.device).expand_as(starts)  # (B, L)
    return torch.where(starts, pos, torch.zeros_like(pos)).cummax(1).values


def _session_cumsum(values: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """(B, L, F) per-event values, (B, L) bool session starts -> (B, L, F) sums since the session's start."""
    total = values.cumsum(1)  # (B, L, F)
    before = total - values  # (B, L, F) sum strictly before t
    # The sum before the current session's first event, taken at its start position.
    start_pos = session_start_positions(starts)  # (B, L)
    base = before.gather(1, start_pos.unsqueeze(-1).expand_as(values))  # (B, L, F)
    return total - base


def side_features(x: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, L) integer features -> (B, L, N_SIDE) float aggregates, log-scaled (0 at padding)."""
    et, real = x["event_type"], x["product"] > 0  # (B, L)
    starts = session_starts(x)  # (B, L)
    kinds = torch.stack([real, et == VIEW, et == CART, et == REMOVE, et == PURCHASE], -1).float()  # (B, L, 5)
    session = _session_cumsum(kinds, starts)  # (B, L, 5) counts in the session so far
    window = kinds.cumsum(1)  # (B, L, 5) counts over the window so far (the customer's recent history)
    n_sessions = starts.float().cumsum(1).unsqueeze(-1)  # (B, L, 1)
    net_cart = (session[..., 2:3] - session[..., 3:4]).clamp_min(0)  # (B, L, 1)
    price = x["price_bucket"].float() * real  # (B, L)
    session_price = _session_cumsum(price.unsqueeze(-1), starts) / session[..., :1].clamp_min(1)  # (B, L, 1) mean
    price_rel = (price.unsqueeze(-1) - session_price) / 8.0  # (B, L, 1) dear or cheap for this session
    out = torch.cat([torch.log1p(session), torch.log1p(window[..., [0, 2, 4]]), torch.log1p(n_sessions),
                     torch.log1p(net_cart), price_rel], -1)  # (B, L, 11)
    return out * real.unsqueeze(-1)


# What LightGBM's intent features have and the counts above lack (training/baselines/intent.py): how long the
# session has lasted, how many distinct products and categories it has touched, how wide its price range is,
# and how often the current product has come back. Tried for the intent gap and not kept: LightGBM gains nothing
# from these on the demo data, and the model lost on validation with them (benchmarks/quality/ABLATION.md).
N_SHAPE = 5


def _gap_seconds() -> torch.Tensor:
    """(N_GAP_BUCKETS,) a representative gap in seconds per gap bucket (geometric middle of its edges)."""
    edges = torch.tensor(GAP_EDGES_S, dtype=torch.float32)
    lower = torch.cat([torch.tensor([0.25]), edges])  # bucket 2: under a second
    upper = torch.cat([edges, edges[-1:] * 2])  # the last bucket: a month or more
    seconds = torch.zeros(N_GAP_BUCKETS)
    seconds[2:] = (lower * upper).sqrt()
    return seconds


GAP_SECONDS = _gap_seconds()


def session_shape_features(x: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, L) integer features -> (B, L, N_SHAPE): minutes in the session, distinct products and categories,
    price range, and views of the current product, each over the session's events so far (0 at padding)."""
    product, real = x["product"], x["product"] > 0  # (B, L)
    L = product.shape[1]
    pos = torch.arange(L, device=product.device)
    starts = session_starts(x)  # (B, L)
    session_id = starts.long().cumsum(1)  # (B, L)
    # (B, L, L): position s is in t's session and not after it. L is 50: the square is cheaper than a sort.
    upto = (session_id.unsqueeze(2) == session_id.unsqueeze(1)) & (pos[None, None, :] <= pos[None, :, None])
    upto = upto & real.unsqueeze(1)
    before = upto & (pos[None, None, :] < pos[None, :, None])  # (B, L, L) strictly earlier in the session
    same_product = product.unsqueeze(2) == product.unsqueeze(1)  # (B, L, L)
    same_category = x["category"].unsqueeze(2) == x["category"].unsqueeze(1)  # (B, L, L)
    new_product = (real & ~(before & same_product).any(-1)).float()  # (B, L)
    new_category = (real & ~(before & same_category).any(-1)).float()  # (B, L)
    distinct = _session_cumsum(torch.stack([new_product, new_category], -1), starts)  # (B, L, 2)
    repeats = (upto & same_product).sum(-1, keepdim=True).float()  # (B, L, 1) this product's events so far
    gap = GAP_SECONDS.to(product.device)[x["gap_bucket"]] * (~starts & real)  # (B, L) in-session gaps only
    minutes = _session_cumsum(gap.unsqueeze(-1), starts) / 60.0  # (B, L, 1)
    price = x["price_bucket"].float()  # (B, L)
    priced = upto & (x["price_bucket"] > 1).unsqueeze(1)  # (B, L, L) MISSING_PRICE is bucket 1
    high = torch.where(priced, price.unsqueeze(1), torch.full_like(price, -1e4).unsqueeze(1)).amax(-1)  # (B, L)
    low = torch.where(priced, price.unsqueeze(1), torch.full_like(price, 1e4).unsqueeze(1)).amin(-1)  # (B, L)
    spread = torch.where(priced.any(-1), high - low, torch.zeros_like(price)).unsqueeze(-1) / 8.0  # (B, L, 1)
    out = torch.cat([torch.log1p(minutes), torch.log1p(distinct), spread, torch.log1p(repeats)], -1)  # (B, L, 5)
    return out * real.unsqueeze(-1)
