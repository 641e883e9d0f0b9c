"""The multi-task sequence model: one shared causal encoder over a user's last L events, three heads.

Shapes: B batch, L window length, D width, P product vocabulary (PAD and UNK included), N selected
positions (flattened (batch, position) pairs that carry a label).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn

from models.encoding import FEATURES, HISTORY_COUNTS, HISTORY_TIMES, WHOLE_HISTORY
from models.ranking import chunked_ranks
from models.repeat import RepeatHead
from models.session_features import N_SHAPE, N_SIDE, session_shape_features, side_features
from models.uplift import UpliftHead
from models.vocab import N_RESERVED


@dataclass
class ArchitectureConfig:
    """What a user chooses (the run config's `model` section); the vocabulary sizes come from the data."""
    encoder: Literal["gru", "transformer"] = "gru"
    d_model: int = 64
    n_layers: int = 1
    n_heads: int = 4
    dropout: float = 0.1
    max_len: int = 50  # window length L: the last events a prediction sees
    history: int = 8  # the last K products a position has seen get a learned, recency-weighted score bonus
    side_features: bool = True  # session/customer counts (models.session_features) as wide side inputs
    cooc_neighbours: int = 0  # M successors/predecessors per product kept as transition evidence; 0 = off
    # Session shape (models.session_features.session_shape_features): minutes, distinct products and categories,
    # price range, returns to the current product: the intent features LightGBM has and the counts lack.
    session_shape: bool = False
    # The shopper's events, purchases and sessions before each event over the whole history it was given
    # (models.encoding.HISTORY_COUNTS), not only the window's: what LightGBM's and RFM's leads rest on. On by
    # default since the selection panel chose it (benchmarks/quality/ABLATION.md).
    history_counts: bool = True
    # Hours as a customer and since the last purchase over that same history (models.encoding.HISTORY_TIMES):
    # with the counts, the visit rate and recency that RFM's churn features rest on.
    history_times: bool = False
    repeat: bool = True  # repeat/explore mixture: a pointer over the last `history` products (models.repeat)
    # The churn head also reads the history counts and times at the moment asked, beside the state: RFM's own
    # inputs handed straight to the one head that needs them, so they do not move the shared state.
    churn_wide: bool = False

    @property
    def reads_whole_history(self) -> bool:
        """Whether an answer depends on every event given, not only the window's (the history features)."""
        return self.history_counts or self.history_times or self.churn_wide


# What a bundle saved before a field existed was built with: off. Loading fills them in (models.bundle).
LEGACY_ARCHITECTURE = {"side_features": False, "cooc_neighbours": 0, "repeat": False, "session_shape": False,
                       "history_counts": False, "history_times": False, "churn_wide": False}


@dataclass(kw_only=True)
class ModelConfig(ArchitectureConfig):
    """Everything that builds the network: the architecture plus the encoder's vocabulary sizes."""
    n_products: int
    n_categories: int
    n_brands: int
    n_event_types: int
    n_price_buckets: int
    n_gap_buckets: int
    uplift_head: str = ""  # "" = none; else a models.uplift design, fitted after training (training/uplift_fit.py)

    def to_dict(self) -> dict:
        return asdict(self)


class EventEmbedding(nn.Module):
    """Sum of one embedding per event feature (plus position for the Transformer): (B, L) ints -> (B, L, D)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.product = nn.Embedding(cfg.n_products, d, padding_idx=0)
        self.others = nn.ModuleDict({
            "category": nn.Embedding(cfg.n_categories, d, padding_idx=0),
            "brand": nn.Embedding(cfg.n_brands, d, padding_idx=0),
            "event_type": nn.Embedding(cfg.n_event_types, d, padding_idx=0),
            "price_bucket": nn.Embedding(cfg.n_price_buckets, d, padding_idx=0),
            "gap_bucket": nn.Embedding(cfg.n_gap_buckets, d, padding_idx=0),
            "new_session": nn.Embedding(3, d, padding_idx=0),
        })
        self.position = nn.Embedding(cfg.max_len, d) if cfg.encoder == "transformer" else None
        self.norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.product(x["product"])  # (B, L, D)
        for name, table in self.others.items():
            h = h + table(x[name])
        if self.position is not None:
            h = h + self.position(torch.arange(h.shape[1], device=h.device))
        return self.dropout(self.norm(h))


class SessionSignalsModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embed = EventEmbedding(cfg)
        if cfg.encoder == "gru":
            self.gru = nn.GRU(d, d, num_layers=cfg.n_layers, batch_first=True,
                              dropout=cfg.dropout if cfg.n_layers > 1 else 0.0)
        else:
            layer = nn.TransformerEncoderLayer(d, cfg.n_heads, 4 * d, cfg.dropout, batch_first=True, norm_first=True)
            self.transformer = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(d)
        # Wide side inputs: explicit counts the baselines live on, mixed into every head's state.
        self.side = nn.Sequential(nn.Linear(N_SIDE, d), nn.GELU(), nn.Linear(d, d)) if cfg.side_features else None
        self.shape = nn.Sequential(nn.Linear(N_SHAPE, d), nn.GELU(), nn.Linear(d, d)) if cfg.session_shape else None
        n_counts = len(HISTORY_COUNTS)
        self.prior = nn.Sequential(nn.Linear(n_counts, d), nn.GELU(), nn.Linear(d, d)) if cfg.history_counts else None
        n_times = len(HISTORY_TIMES)
        self.times = nn.Sequential(nn.Linear(n_times, d), nn.GELU(), nn.Linear(d, d)) if cfg.history_times else None
        self.intent_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))
        # Churn is asked at a moment in time, so the head also sees how long the user has been away.
        n_wide = len(WHOLE_HISTORY) if cfg.churn_wide else 0
        self.churn_head = nn.Sequential(nn.Linear(d + 1 + n_wide, d), nn.GELU(), nn.Linear(d, 1))
        # Next product: a query vector scored against the tied product table. A product's output vector
        # also carries its category's and brand's embeddings, so rarely seen products borrow strength
        # from their category (set_catalogue fills the maps; they travel in the weights file).
        self.product_query = nn.Linear(d, d)
        self.product_bias = nn.Parameter(torch.zeros(cfg.n_products))
        self.register_buffer("product_category", torch.ones(cfg.n_products, dtype=torch.long))
        self.register_buffer("product_brand", torch.ones(cfg.n_products, dtype=torch.long))
        # Shoppers come back to what they just looked at: a bonus per recency step (0 = current event).
        self.history_weight = nn.Parameter(torch.zeros(cfg.history))
        # Transition evidence (models.cooccurrence): top-M successors [0] and predecessors [1] per product,
        # filled by set_transitions; a learned weight per direction and recency step scales log1p(count).
        # Only when enabled, so bundles saved before these existed still load (strict state dict).
        if m := cfg.cooc_neighbours:
            self.register_buffer("cooc_ids", torch.zeros(2, cfg.n_products, m, dtype=torch.long))
            self.register_buffer("cooc_count", torch.zeros(2, cfg.n_products, m))
            self.cooc_weight = nn.Parameter(torch.full((2, cfg.history), 0.5))
        # The repeat/explore mixture (models.repeat); only when enabled, for the same reason.
        self.repeat = RepeatHead(d, cfg.history) if cfg.repeat else None
        self.category_head = nn.Linear(d, cfg.n_categories)
        self.brand_head = nn.Linear(d, cfg.n_brands)
        # Purchase chance with and without a treatment (models.uplift); only in bundles that were given one.
        self.uplift_head = UpliftHead(d, cfg.uplift_head) if cfg.uplift_head else None

    def encode(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        """Causal hidden state after each event: (B, L) features -> (B, L, D); position t sees events <= t."""
        h = self.embed(x)  # (B, L, D)
        if self.cfg.encoder == "gru":
            # Right-padded windows: padding comes after every real event, so it cannot leak into them.
            h, _ = self.gru(h)
        else:
            L = h.shape[1]
            causal = torch.triu(torch.ones(L, L, dtype=torch.bool, device=h.device), diagonal=1)
            h = self.transformer(h, mask=causal, is_causal=True)
        if self.side is not None:
            h = h + self.side(side_features(x))  # (B, L, D)
        if self.shape is not None:
            h = h + self.shape(session_shape_features(x))  # (B, L, D)
        if self.prior is not None:
            counts = torch.stack([x[name] for name in HISTORY_COUNTS], -1).float()  # (B, L, 3)
            h = h + self.prior(torch.log1p(counts) * (x["product"] > 0).unsqueeze(-1))  # (B, L, D)
        if self.times is not None:
            hours = torch.stack([x[name] for name in HISTORY_TIMES], -1).float()  # (B, L, 2)
            h = h + self.times(torch.log1p(hours) * (x["product"] > 0).unsqueeze(-1))  # (B, L, D)
        return self.out_norm(h)

    def intent_logit(self, h: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (...): logit that the current session ends in a purchase."""
        return self.intent_head(h).squeeze(-1)

    def churn_inputs(self, x: dict[str, torch.Tensor], rows: torch.Tensor, pos: torch.Tensor) -> torch.Tensor | None:
        """(B, L) features, (M,) rows and positions asked -> (M, 5) log1p history counts and times there, or
        None when the churn head does not read them (model.churn_wide)."""
        if not self.cfg.churn_wide:
            return None
        raw = torch.stack([x[name][rows, pos] for name in WHOLE_HISTORY], -1)  # (M, 5)
        return torch.log1p(raw.float())

    def churn_logit(self, h: torch.Tensor, gap: torch.Tensor, wide: torch.Tensor | None = None) -> torch.Tensor:
        """(N, D), (N,) log1p(days away), (N, 5) `churn_inputs` or None -> (N,): logit that the user makes no
        purchase within the horizon."""
        parts = [h, gap.unsqueeze(-1).to(h.dtype)] + ([] if wide is None else [wide.to(h.dtype)])
        return self.churn_head(torch.cat(parts, dim=-1)).squeeze(-1)

    def set_catalogue(self, product_category: torch.Tensor, product_brand: torch.Tensor) -> None:
        """(P,) category and brand id of each product id, from the encoder."""
        self.product_category.copy_(product_category)
        self.product_brand.copy_(product_brand)

    def set_transitions(self, successors: tuple[torch.Tensor, torch.Tensor],
                        predecessors: tuple[torch.Tensor, torch.Tensor]) -> None:
        """(ids (P, M), counts (P, M)) for each direction, from `models.cooccurrence.transition_table`."""
        self.cooc_ids.copy_(torch.stack([successors[0], predecessors[0]]))
        self.cooc_count.copy_(torch.stack([successors[1], predecessors[1]]))

    def transition_evidence(self, history: torch.Tensor, logits: torch.Tensor,
                            loo_target: torch.Tensor | None = None) -> torch.Tensor:
        """Add sum over recent products k and directions of w * log1p(count) to (N, P) logits.

        `loo_target` (N,) in training: the pair (current product, target) was counted from this very
        position, so its own count is taken out (leave one out); otherwise the weight learns to trust a
        count that is partly the label.
        """
        if not self.cfg.cooc_neighbours:
            return logits
        K = history.shape[1]
        ids = self.cooc_ids[:, history]  # (2, N, K, M)
        value = torch.log1p(self.cooc_count[:, history])  # (2, N, K, M)
        if loo_target is not None:
            own = (ids[0, :, 0] == loo_target.unsqueeze(1)).float()  # (N, M) the successor slot of the label
            value[0, :, 0] = torch.log1p((self.cooc_count[0, history[:, 0]] - own).clamp_min(0))
        valid = (history >= N_RESERVED).to(value.dtype)  # (N, K)
        w = self.cooc_weight[:, :K].to(value.dtype)[:, None, :, None] * valid[None, :, :, None]  # (2, N, K, 1)
        N = history.shape[0]
        return logits.scatter_add(1, ids.permute(1, 0, 2, 3).reshape(N, -1),
                                  (w * value).permute(1, 0, 2, 3).reshape(N, -1))

    def product_table(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Output vectors of products `ids` (all when None): (P', D) = product + its category + its brand."""
        ids = torch.arange(self.cfg.n_products, device=self.product_bias.device) if ids is None else ids
        e = self.embed
        return (e.product(ids) + e.others["category"](self.product_category[ids])
                + e.others["brand"](self.product_brand[ids]))

    def product_query_vectors(self, h: torch.Tensor) -> torch.Tensor:
        return self.product_query(h)  # (N, D)

    def product_logits(self, h: torch.Tensor, history: torch.Tensor, table: torch.Tensor | None = None,
                       loo_target: torch.Tensor | None = None) -> torch.Tensor:
        """(N, D), (N, K) recent product ids -> (N, P) scores over the whole catalogue.

        `table`: `product_table()` computed once by a caller that scores many chunks (evaluation,
        serving); it is constant between optimiser steps. PAD and UNK can never be recommended.
        """
        table = self.product_table() if table is None else table  # (P, D)
        logits = torch.addmm(self.product_bias, self.product_query(h), table.T)  # (N, P)
        bonus = self.history_weight[: history.shape[1]].to(logits.dtype).expand_as(history) * (history >= N_RESERVED)
        logits = logits.scatter_add(1, history, bonus)  # (N, P)
        logits = self.transition_evidence(history, logits, loo_target)  # (N, P)
        logits[:, :N_RESERVED] = float("-inf")
        if self.repeat is not None:  # scores become log-probabilities of the repeat/explore mixture
            logits = self.repeat(h, history, table[history], logits)  # (N, P)
        return logits

    def next_product_ranks(self, h: torch.Tensor, history: torch.Tensor, target: torch.Tensor,
                           table: torch.Tensor | None = None) -> torch.Tensor:
        """(N,) pessimistic rank of each target (N,) over the whole catalogue, from (N, D) states and
        (N, K) recent products; scored in row chunks, never (N x P) at once. `table` as in `product_logits`."""
        table = self.product_table() if table is None else table  # (P, D), once for all chunks
        return chunked_ranks(lambda q, hist: self.product_logits(q, hist, table), h, history, target,
                             self.cfg.n_products)

    def score_products(self, query: torch.Tensor, ids: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        """Scores of a few products per row, recency bonus included: query (N, D), ids (N, M), history (N, K) -> (N, M)."""
        scores = (query.unsqueeze(1) * self.product_table(ids)).sum(-1) + self.product_bias[ids]  # (N, M)
        bonus = torch.zeros(ids.shape, device=ids.device)
        for k in range(history.shape[1]):  # (N, M) per recency step; M and K are small
            recent = history[:, k:k + 1]  # (N, 1)
            bonus = bonus + self.history_weight[k] * ((recent == ids) & (recent >= N_RESERVED))
        if self.cfg.cooc_neighbours:  # the same transition evidence as product_logits, at these ids only
            K = history.shape[1]
            nb = self.cooc_ids[:, history]  # (2, N, K, M)
            value = torch.log1p(self.cooc_count[:, history]) * (history >= N_RESERVED)[None, :, :, None]
            hit = (nb.unsqueeze(3) == ids[None, :, None, :, None]).to(value.dtype)  # (2, N, K, M', M)
            per = (hit * value.unsqueeze(3)).sum(-1)  # (2, N, K, M')
            bonus = bonus + (self.cooc_weight[:, None, :K, None] * per).sum((0, 2))  # (N, M')
        return scores + bonus

    def repeat_log_prob(self, h: torch.Tensor, history: torch.Tensor, log_explore_target: torch.Tensor,
                        target: torch.Tensor) -> torch.Tensor:
        """(N, D), (N, K), (N,) explore log-probability of each target (N,) -> (N,) its log-probability under
        the repeat/explore mixture (the sampled softmax's path; `product_logits` is the full one)."""
        return self.repeat.at_targets(h, history, self.product_table(history), log_explore_target, target)

    def score_shared(self, query: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Scores of candidates shared by every row, without the recency bonus: (N, D), (S,) -> (N, S).

        The sampled softmax scores each row's recent products exactly with `score_products` and drops
        their draws from the shared candidates, so no shared candidate would ever get a bonus.
        """
        return torch.addmm(self.product_bias[ids], query, self.product_table(ids).T)

    def category_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.category_head(h)  # (N, C)

    def brand_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.brand_head(h)  # (N, Bn)


def feature_batch(features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Pick the model's input features out of a batch dict that may carry labels too."""
    return {name: features[name] for name in FEATURES}


def recent_products(product: torch.Tensor, k: int) -> torch.Tensor:
    """(B, L) product ids -> (B, L, K): at each position, the products of events t, t-1, ..., t-K+1 (PAD before the window)."""
    padded = torch.nn.functional.pad(product, (k - 1, 0))  # (B, L + K - 1)
    return padded.unfold(1, k, 1).flip(-1)  # (B, L, K)
