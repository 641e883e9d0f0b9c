"""Requests in, signals out: one batch of shoppers through history, encoding, model, filters and segments.

Everything that does not depend on a request (lookup tables, product groups, the model in eval mode) is
built in `__init__`; `predict` does only per-request work. No BentoML here: the service wraps this.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from models.predictor import SignalPredictor
from models.vocab import N_RESERVED, UNK
from models.bundle import load_list_arrays
from serving.candidates import allowed_products
from serving.lists.catalogue_items import CatalogueItems
from serving.lists.maker import ListMaker, ListsAnswer
from serving.product_groups import ProductGroups
from serving.history import ShopperHistory
from serving.top_k import Ranker
from serving.request_encoding import encode_history
from serving.api_types import (Affinity, Event, HistorySummary, Lists, ModelIdentity, ShopperRequest,
                             ShopperSignals)
from serving.segments import SegmentRules, segments_for


@dataclass
class ScoredBatch:
    """The answers, and what they were computed from, for callers that need more than the answer
    (batch scoring: the replayed histories and the customers' learned representations)."""
    signals: list[ShopperSignals]
    histories: list[ShopperHistory]
    representation: np.ndarray  # (B, D), NaN rows for empty histories


class SignalsEngine:
    def __init__(self, predictor: SignalPredictor, identity: ModelIdentity, rules: SegmentRules,
                 list_arrays: dict[str, np.ndarray] | None = None, trends: Path | None = None):
        """list_arrays: the bundle's tables of the lists by purpose (`models.bundle.load_list_arrays`);
        trends: the trends table (or its folder) that `trending` reads, watched for newer versions."""
        self.predictor = predictor
        self.identity = identity
        self.rules = rules
        self.catalogue = ProductGroups(predictor.encoder)
        self.window = predictor.window
        meta = predictor.meta
        self.products = Ranker(predictor.popularity_scores)
        self.categories = Ranker(np.asarray(meta["category_prior"], dtype=np.float32))
        self.brands = Ranker(np.asarray(meta["brand_prior"], dtype=np.float32))
        self.items = CatalogueItems(self.catalogue)
        self.lists = ListMaker(predictor, self.catalogue, self.items, list_arrays or {}, trends)

    @classmethod
    def from_bundle(cls, path: Path, identity: ModelIdentity, rules: SegmentRules,
                    trends: Path | None = None) -> "SignalsEngine":
        return cls(SignalPredictor.from_bundle(path), identity, rules, load_list_arrays(path), trends)

    def predict(self, requests: Sequence[ShopperRequest], as_of: Sequence[datetime]) -> list[ShopperSignals]:
        """Signals for each request; `as_of[i]` is request i's as_of, or the moment it arrived."""
        return self.predict_scored(requests, as_of).signals

    def predict_scored(self, requests: Sequence[ShopperRequest], as_of: Sequence[datetime]) -> ScoredBatch:
        """`predict`, with the histories and representations it read (one computation for both)."""
        histories = [ShopperHistory.from_events(r.events) for r in requests]
        encoded = [None if h.empty else encode_history(h, self.predictor.encoder, self.window) for h in histories]
        seconds_away = np.array([0.0 if h.empty else h.idle_seconds(t) for h, t in zip(histories, as_of)])
        scores = self.predictor.score_encoded(encoded, seconds_away)
        uplift = scores.uplift  # (B,) NaN: no history; None: no head
        lift = [None] * len(requests) if uplift is None else [None if np.isnan(u) else float(u) for u in uplift]
        modelled = [e is not None for e in encoded]
        allowed = [allowed_products(r.filters, h, self.catalogue) for r, h in zip(requests, histories)]
        # `next` is the same ranking as `products`: one top-k, as long as the longer of the two.
        products = self.products.top(scores.products, modelled, [_next_k(r) for r in requests], allowed)
        no_lists = ListsAnswer()
        lists = (self.lists.answer(requests, histories, allowed, products, scores.representation) if any(r.lists for r in requests)
                 else [no_lists] * len(requests))
        no_filter = [None] * len(requests)
        categories = self.categories.top(scores.categories, modelled, [r.k_categories for r in requests], no_filter)
        brands = self.brands.top(scores.brands, modelled, [r.k_brands for r in requests], no_filter)
        # model_construct: every value is the engine's own; validating them again would only cost time.
        signals = [ShopperSignals.model_construct(
            user_id=request.user_id,
            as_of=moment,
            purchase_intent=float(scores.intent[i]),
            churn_risk=float(scores.churn[i]),
            uplift=lift[i],
            products=self.items.items(products[i][0][:request.k], np.exp(products[i][1][:request.k])),
            categories=_affinities(*categories[i], self.catalogue.category_names),
            brands=_affinities(*brands[i], self.catalogue.brand_names),
            segments=segments_for(self.rules, history, moment, float(scores.intent[i]), float(scores.churn[i]),
                                  lift[i]),
            history=_summary(history, encoded[i]),
            model=self.identity,
            lists=lists[i].lists,
            notes=lists[i].notes,
            trends=lists[i].trends,
        ) for i, (request, history, moment) in enumerate(zip(requests, histories, as_of))]
        return ScoredBatch(signals, histories, scores.representation)

    def warm_up(self) -> None:
        """Run every path once (empty history, a full window, filters, a batch) before reporting ready, so
        the first real request pays no lazy initialisation of torch kernels or pydantic serialisers."""
        now = datetime.now(UTC)
        tokens = self.catalogue.product_names[N_RESERVED:N_RESERVED + self.window].tolist()
        events = [Event(ts=now - timedelta(minutes=len(tokens) - i), event_type="view", product_id=t, price=1.0)
                  for i, t in enumerate(tokens)]
        full = ShopperRequest(events=events, filters={"exclude_purchased": True, "max_price": 10.0},
                              lists={name: 3 for name in Lists.model_fields})
        for batch in ([ShopperRequest(events=[])], [full], [full] * 8):
            for signals in self.predict(batch, [now] * len(batch)):
                signals.model_dump_json()


def _next_k(request: ShopperRequest) -> int:
    return max(request.k, request.lists.next or 0) if request.lists else request.k


def _summary(history: ShopperHistory, encoded: dict[str, np.ndarray] | None) -> HistorySummary:
    used = np.empty(0, dtype=np.int64) if encoded is None else encoded["product"]
    return HistorySummary(events_received=len(history.events), events_used=len(used),
                          unknown_products=int((used == UNK).sum()))


def _affinities(ids: np.ndarray, probabilities: np.ndarray, names: np.ndarray) -> list[Affinity]:
    return [Affinity(name=names[i], score=float(p)) for i, p in zip(ids, probabilities)]
