"""Scores for shoppers' recent events with a loaded bundle: what serving calls and what tests compare.

Offline callers use `score` (pandas frames); the endpoint encodes requests itself and calls
`score_encoded`, the same computation, so the served scores equal the offline ones (a test checks it
over HTTP).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from models.bundle import load_bundle
from models.encoding import FEATURES, EventEncoder, churn_gap_feature, with_whole_history
from models.network import SessionSignalsModel, recent_products
from models.uplift import uplift_at


@dataclass
class Scores:
    intent: np.ndarray  # (B,) probability the current session ends in a purchase
    churn: np.ndarray  # (B,) probability of no purchase within the churn horizon
    products: np.ndarray  # (B, P) product scores (log-probabilities), PAD/UNK = -inf
    categories: np.ndarray  # (B, C) category probabilities
    brands: np.ndarray  # (B, Bn) brand probabilities
    representation: np.ndarray  # (B, D) the encoder's state after the latest event (the customer's learned
    #                             representation: what lookalikes compare); NaN rows for empty histories
    uplift: np.ndarray | None = None  # (B,) change in the purchase chance if treated now (models.uplift), NaN
    #                                   for empty histories; None when the model has no uplift head


class SignalPredictor:
    def __init__(self, model: SessionSignalsModel, encoder: EventEncoder, meta: dict[str, Any]):
        self.model = model.eval()
        self.encoder = encoder
        self.meta = meta
        self.window = model.cfg.max_len
        # Precomputed once: what an empty history gets (popularity and base rates), and the catalogue's
        # output vectors (product + category + brand embeddings), constant once trained.
        self.popularity_scores = np.asarray(meta["popularity_log_prob"], dtype=np.float32)  # (P,)
        with torch.inference_mode():
            self.product_table = self.model.product_table()  # (P, D)

    @classmethod
    def from_bundle(cls, path: str | Path) -> "SignalPredictor":
        return cls(*load_bundle(path))

    def encode_timeline(self, events: pd.DataFrame) -> dict[str, np.ndarray]:
        """One user's events -> features of the latest `window` events, each (l,), time-sorted."""
        events = events.sort_values("ts", kind="stable")
        latest = events.tail(self.window)
        session = events["session_id"].to_numpy()
        starts = np.append(True, session[1:] != session[:-1])  # (N,) as `EventEncoder.encode` cuts sessions
        return with_whole_history(self.encoder.encode(latest.assign(user_id="u")), starts,
                                  events["event_type"].to_numpy() == "purchase",
                                  events["ts"].to_numpy(dtype="datetime64[us]").astype(np.int64) / 1e6)

    def score(self, timelines: list[pd.DataFrame], as_of: list[pd.Timestamp]) -> Scores:
        """Score several shoppers at once; each timeline is canonical events (any order, any length)."""
        encoded = [self.encode_timeline(t) if len(t) else None for t in timelines]
        seconds_away = np.array([
            (pd.Timestamp(at).value - t["ts"].max().value) / 1e9 if len(t) else 0.0  # ns -> s
            for t, at in zip(timelines, as_of)
        ])
        return self.score_encoded(encoded, seconds_away)

    @torch.inference_mode()
    def score_encoded(self, encoded: Sequence[dict[str, np.ndarray] | None], seconds_away: np.ndarray) -> Scores:
        """encoded: per shopper the features of its window (None: empty history, answered by base rates
        and popularity); seconds_away: (B,) from each shopper's last event to the moment churn is asked."""
        meta, model = self.meta, self.model
        B = len(encoded)
        present = [i for i, e in enumerate(encoded) if e is not None]
        absent = [i for i, e in enumerate(encoded) if e is None]
        intent = np.full(B, meta["intent_base_rate"], dtype=np.float64)
        churn = np.full(B, meta["churn_base_rate"], dtype=np.float64)
        # Rows of the outputs are written once: priors only where there is no history.
        products = np.empty((B, len(self.popularity_scores)), dtype=np.float32)
        categories = np.empty((B, len(meta["category_prior"])), dtype=np.float32)
        brands = np.empty((B, len(meta["brand_prior"])), dtype=np.float32)
        representation = np.full((B, model.cfg.d_model), np.nan, dtype=np.float32)
        uplift = None if model.uplift_head is None else np.full(B, np.nan)
        if absent:
            products[absent] = self.popularity_scores
            categories[absent] = meta["category_prior"]
            brands[absent] = meta["brand_prior"]
        if present:
            batch, lengths = pad_windows([encoded[i] for i in present])
            h = model.encode(batch)  # (b, L, D)
            rows, last_pos = torch.arange(len(present)), torch.from_numpy(lengths - 1)
            last = h[rows, last_pos]  # (b, D)
            representation[present] = last.numpy()
            history = recent_products(batch["product"], model.cfg.history)[rows, last_pos]  # (b, K)
            gap = torch.from_numpy(churn_gap_feature(seconds_away[present]))  # (b,)
            intent[present] = torch.sigmoid(model.intent_logit(last)).double().numpy()
            wide = model.churn_inputs(batch, rows, last_pos)  # (b, 5) or None
            churn[present] = torch.sigmoid(model.churn_logit(last, gap, wide)).double().numpy()
            logits = model.product_logits(last, history, self.product_table)  # (b, P)
            products[present] = torch.log_softmax(logits, dim=-1).numpy()
            categories[present] = torch.softmax(model.category_logits(last), dim=-1).numpy()
            brands[present] = torch.softmax(model.brand_logits(last), dim=-1).numpy()
            if uplift is not None:
                uplift[present] = uplift_at(model, last, batch, rows, last_pos).double().numpy()
        return Scores(intent, churn, products, categories, brands, representation, uplift)


def pad_windows(windows: Sequence[dict[str, np.ndarray]]) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """Windows' features, each (l_i,) -> right-padded (b, L) tensors and (b,) lengths (padding follows every
    real event, so a causal encoder's state at l_i - 1 is that of the window alone)."""
    lengths = np.array([len(w["product"]) for w in windows])
    batch = {name: torch.zeros(len(windows), lengths.max(), dtype=torch.long) for name in FEATURES}  # (b, L)
    for row, window in enumerate(windows):
        for name in FEATURES:
            batch[name][row, : lengths[row]] = torch.from_numpy(window[name])
    return batch, lengths


@torch.inference_mode()
def last_states(model: SessionSignalsModel, windows: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    """Windows (none empty), a model in eval mode -> (b, D) the encoder's state after each one's latest event: `Scores.representation`
    without the heads (the customer index of `people_like_you` stores these)."""
    batch, lengths = pad_windows(windows)
    h = model.encode(batch)  # (b, L, D)
    return h[torch.arange(len(windows)), torch.from_numpy(lengths - 1)].float().numpy()
