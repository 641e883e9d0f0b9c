"""Scores for shoppers' recent events with a loaded bundle: what serving calls and what tests compare.

The offline evaluation and the endpoint both go through `SignalPredictor.score`, so the served
scores equal the offline ones by construction (and a test checks it over HTTP).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from models.bundle import load_bundle
from models.encoding import FEATURES, EventEncoder, churn_gap_feature
from models.network import SessionSignalsModel, recent_products


@dataclass
class Scores:
    intent: np.ndarray  # (B,) probability the current session ends in a purchase
    churn: np.ndarray  # (B,) probability of no purchase within the churn horizon
    products: np.ndarray  # (B, P) product scores (log-probabilities), PAD/UNK = -inf
    categories: np.ndarray  # (B, C) category probabilities
    brands: np.ndarray  # (B, Bn) brand probabilities


class SignalPredictor:
    def __init__(self, model: SessionSignalsModel, encoder: EventEncoder, meta: dict[str, Any]):
        self.model = model.eval()
        self.encoder = encoder
        self.meta = meta
        self.window = model.cfg.max_len
        # Precomputed once: what an empty history gets (popularity and base rates).
        self.popularity_scores = np.asarray(meta["popularity_log_prob"], dtype=np.float32)  # (P,)

    @classmethod
    def from_bundle(cls, path: str | Path) -> "SignalPredictor":
        return cls(*load_bundle(path))

    def encode_timeline(self, events: pd.DataFrame) -> dict[str, np.ndarray]:
        """One user's events -> features of the latest `window` events, each (l,), time-sorted."""
        events = events.sort_values("ts", kind="stable").tail(self.window)
        return self.encoder.encode(events.assign(user_id="u"))

    @torch.inference_mode()
    def score(self, timelines: list[pd.DataFrame], as_of: list[pd.Timestamp]) -> Scores:
        """Score several shoppers at once; each timeline is canonical events (any order, any length)."""
        encoded = [self.encode_timeline(t) if len(t) else None for t in timelines]
        present = [i for i, e in enumerate(encoded) if e is not None]
        B = len(timelines)
        n_products = len(self.encoder.products)
        intent = np.full(B, self.meta["intent_base_rate"], dtype=np.float64)
        churn = np.full(B, self.meta["churn_base_rate"], dtype=np.float64)
        products = np.tile(self.popularity_scores, (B, 1))
        categories = np.tile(np.asarray(self.meta["category_prior"], dtype=np.float32), (B, 1))
        brands = np.tile(np.asarray(self.meta["brand_prior"], dtype=np.float32), (B, 1))
        if present:
            lengths = np.array([len(encoded[i]["product"]) for i in present])
            batch = {name: torch.zeros(len(present), lengths.max(), dtype=torch.long) for name in FEATURES}
            for row, i in enumerate(present):
                for name in FEATURES:
                    batch[name][row, : lengths[row]] = torch.from_numpy(encoded[i][name])
            h = self.model.encode(batch)  # (b, L, D)
            rows, last_pos = torch.arange(len(present)), torch.from_numpy(lengths - 1)
            last = h[rows, last_pos]  # (b, D)
            history = recent_products(batch["product"], self.model.cfg.history)[rows, last_pos]  # (b, K)
            last_ts = np.array([timelines[i]["ts"].max().value / 1e9 for i in present])  # ns -> s
            now = np.array([pd.Timestamp(as_of[i]).value / 1e9 for i in present])
            gap = torch.from_numpy(churn_gap_feature(now - last_ts))
            intent[present] = torch.sigmoid(self.model.intent_logit(last)).double().numpy()
            churn[present] = torch.sigmoid(self.model.churn_logit(last, gap)).double().numpy()
            products[present] = torch.log_softmax(self.model.product_logits(last, history), dim=-1).numpy()
            categories[present] = torch.softmax(self.model.category_logits(last), dim=-1).numpy()
            brands[present] = torch.softmax(self.model.brand_logits(last), dim=-1).numpy()
        assert products.shape == (B, n_products)
        return Scores(intent, churn, products, categories, brands)
