"""Answers the lists by purpose a batch of requests asks for, each after the request's filters.

Lists of catalogue ids (next, complementary, similar, people_like_you) go through the request's (P,) filter mask
(serving/candidates.py); lists of named products (recently viewed, trending) through the same rules on
their own fields (serving/lists/named_filter.py). An empty list comes with a note saying why.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.predictor import SignalPredictor
from serving.api_types import ListItem, Lists, ShopperRequest, TrendsIdentity
from serving.history import ShopperHistory
from serving.lists.catalogue_items import CatalogueItems
from serving.lists.complementary import Complementary
from serving.lists.named_filter import NamedProduct, allows
from serving.lists.people_like_you import PeopleLikeYou
from serving.lists.recently_viewed import recently_viewed
from serving.lists.similar import Similar
from serving.lists.trending import WatchedTrends
from serving.product_groups import ProductGroups
from serving.top_k import Ranked

FILTERED_OUT = "the filters exclude every candidate"


@dataclass
class ListsAnswer:
    lists: Lists | None = None
    notes: list[str] = field(default_factory=list)
    trends: TrendsIdentity | None = None


class ListMaker:
    def __init__(self, predictor: SignalPredictor, catalogue: ProductGroups, items: CatalogueItems,
                 arrays: dict[str, np.ndarray], trends: Path | None):
        self.items = items
        self.complementary = Complementary(arrays, catalogue)
        self.similar = Similar(predictor.product_table, catalogue, arrays.get("product_price"),
                               predictor.popularity_scores)
        self.people_like_you = PeopleLikeYou(arrays)
        self.trends = WatchedTrends(trends)

    def answer(self, requests: Sequence[ShopperRequest], histories: Sequence[ShopperHistory],
               allowed: Sequence[np.ndarray | None], ranked_next: Sequence[Ranked],
               representation: np.ndarray) -> list[ListsAnswer]:
        """One answer per request; `ranked_next[i]`: (ids, log-probabilities) of the next-product ranking,
        at least as long as the request's `next` list; representation (B, D): the model's state of each
        shopper (NaN rows for empty histories)."""
        table = self.trends.refresh() if any(r.lists and r.lists.trending for r in requests) else None
        lookalike = [i for i, r in enumerate(requests) if r.lists and r.lists.people_like_you]
        alike = dict(zip(lookalike, self.people_like_you.candidates(representation[lookalike]))) if lookalike else {}
        return [self._one(r, h, mask, nxt, table, alike.get(i)) if r.lists else ListsAnswer()
                for i, (r, h, mask, nxt) in enumerate(zip(requests, histories, allowed, ranked_next))]

    def _one(self, request: ShopperRequest, history: ShopperHistory, allowed: np.ndarray | None,
             ranked_next: Ranked, table, alike) -> ListsAnswer:
        asked, answer, out = request.lists, ListsAnswer(), {}

        def note(name: str, reason: str) -> None:
            answer.notes.append(f"{name}: {reason}")

        if asked.next:
            ids, log_probs = ranked_next
            out["next"] = self.items.items(ids[:asked.next], np.exp(log_probs[:asked.next]))
            if not out["next"]:
                note("next", FILTERED_OUT)
        if asked.complementary:
            ids, scores, reason = self.complementary.candidates(history)
            out["complementary"] = self._best_allowed(ids, scores, allowed, asked.complementary)
            if not out["complementary"]:
                note("complementary", reason or FILTERED_OUT)
        if asked.similar:
            anchor = self.similar.anchor(history)
            if anchor is None:
                out["similar"] = []
                note("similar", "no viewed product the model knows")
            else:
                out["similar"] = self._best_allowed(*self.similar.candidates(anchor), allowed, asked.similar)
                if not out["similar"]:
                    note("similar", "the filters exclude every product of the viewed product's category and brand")
        if asked.trending:
            if table is None:
                out["trending"] = []
                note("trending", self.trends.missing_reason)
            else:
                items, fallback = table.candidates(history)
                out["trending"], any_item = _named_items(items, request, history, asked.trending)
                answer.trends = table.identity
                if fallback:
                    note("trending", fallback)
                if not out["trending"]:
                    note("trending", FILTERED_OUT if any_item else "the trends table is empty")
        if asked.people_like_you:
            ids, scores, reason = alike
            out["people_like_you"] = self._best_allowed(ids, scores, allowed, asked.people_like_you)
            if not out["people_like_you"]:
                note("people_like_you", reason or FILTERED_OUT)
        if asked.recently_viewed:
            out["recently_viewed"], any_item = _named_items(recently_viewed(history), request, history,
                                                            asked.recently_viewed, score=False)
            if not out["recently_viewed"]:
                note("recently_viewed", FILTERED_OUT if any_item else "no viewed product left unbought")
        answer.lists = Lists.model_construct(**out)
        return answer

    def _best_allowed(self, ids: np.ndarray, scores: np.ndarray, allowed: np.ndarray | None, k: int) -> list[ListItem]:
        """ids (c,), scores (c,) best first -> the first k the filters allow."""
        if allowed is not None:
            keep = allowed[ids]
            ids, scores = ids[keep], scores[keep]
        return self.items.items(ids[:k], scores[:k])


def _named_items(items: Iterable[NamedProduct], request: ShopperRequest, history: ShopperHistory, k: int,
                 score: bool = True) -> tuple[list[ListItem], bool]:
    """The first k items the filters allow, and whether there was any item at all (for the note)."""
    out: list[ListItem] = []
    any_item = False
    for item in items:
        any_item = True
        if allows(request.filters, history, item):
            out.append(ListItem(product_id=item.product_id, score=item.score if score else None,
                                category=item.category, brand=item.brand))
            if len(out) == k:
                break
    return out, any_item
