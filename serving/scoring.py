"""The forward pass of `SignalPredictor.score`, on features that are already encoded.

`SignalPredictor.score` takes pandas frames and encodes them itself; this takes the output of
serving/request_encoding.py instead, and is otherwise the same computation (the e2e test checks served
= offline over HTTP), with one saving: the catalogue's output vectors (`product_table`: product +
category + brand embeddings, constant once trained) are computed once at load instead of per call.
It belongs in models/predictor.py as `SignalPredictor.score_encoded`, with `score` calling it; until
then it lives here.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from models.encoding import FEATURES, churn_gap_feature
from models.network import recent_products
from models.predictor import Scores, SignalPredictor


class EncodedScorer:
    def __init__(self, predictor: SignalPredictor):
        self.predictor = predictor
        with torch.inference_mode():
            self.product_table = predictor.model.product_table()  # (P, D)

    @torch.inference_mode()
    def score(self, encoded: Sequence[dict[str, np.ndarray] | None], seconds_away: np.ndarray) -> Scores:
        """encoded: per shopper the features of its window, None for an empty history (base rates and
        popularity); seconds_away: (B,) seconds from each shopper's last event to the moment asked about."""
        predictor, meta = self.predictor, self.predictor.meta
        B = len(encoded)
        present = [i for i, e in enumerate(encoded) if e is not None]
        absent = [i for i, e in enumerate(encoded) if e is None]
        intent = np.full(B, meta["intent_base_rate"], dtype=np.float64)
        churn = np.full(B, meta["churn_base_rate"], dtype=np.float64)
        # Rows of the outputs are written once: priors only where there is no history.
        products = np.empty((B, len(predictor.popularity_scores)), dtype=np.float32)
        categories = np.empty((B, len(meta["category_prior"])), dtype=np.float32)
        brands = np.empty((B, len(meta["brand_prior"])), dtype=np.float32)
        if absent:
            products[absent] = predictor.popularity_scores
            categories[absent] = meta["category_prior"]
            brands[absent] = meta["brand_prior"]
        if present:
            lengths = np.array([len(encoded[i]["product"]) for i in present])
            batch = {name: torch.zeros(len(present), lengths.max(), dtype=torch.long) for name in FEATURES}  # (b, L)
            for row, i in enumerate(present):
                for name in FEATURES:
                    batch[name][row, : lengths[row]] = torch.from_numpy(encoded[i][name])
            model = predictor.model
            h = model.encode(batch)  # (b, L, D)
            rows, last_pos = torch.arange(len(present)), torch.from_numpy(lengths - 1)
            last = h[rows, last_pos]  # (b, D)
            history = recent_products(batch["product"], model.cfg.history)[rows, last_pos]  # (b, K)
            gap = torch.from_numpy(churn_gap_feature(seconds_away[present]))  # (b,)
            intent[present] = torch.sigmoid(model.intent_logit(last)).double().numpy()
            churn[present] = torch.sigmoid(model.churn_logit(last, gap)).double().numpy()
            logits = model.product_logits(last, history, self.product_table)  # (b, P)
            products[present] = torch.log_softmax(logits, dim=-1).numpy()
            categories[present] = torch.softmax(model.category_logits(last), dim=-1).numpy()
            brands[present] = torch.softmax(model.brand_logits(last), dim=-1).numpy()
        return Scores(intent, churn, products, categories, brands)
