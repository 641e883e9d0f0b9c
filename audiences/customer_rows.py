"""One partition's customers -> one row each: the endpoint's signals, their history summary and the
audience rules' labels.

Every customer is scored by `SignalsEngine.predict_scored` on their events up to as_of, exactly as /predict
scores a request carrying those events and that as_of (the same history replay, encoding, model, filters and
segment rules), so the batch answer and the served one cannot drift. Only the events that can change the
answer are handed to it (audiences/timelines.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from audiences.config import AudienceConfig
from audiences.lists import list_values, lists_request, reads_every_event
from audiences.timelines import Timelines
from events.schema import SESSION_GAP_MINUTES
from serving.api_types import Filters, ShopperRequest
from serving.engine import SignalsEngine
from serving.history import ShopperHistory
from serving.segments import segments_for

DAY_S = 86400.0
PURCHASED_CATEGORIES = 3  # the outreach file's "top categories" of what a customer bought


@dataclass
class PartitionResult:
    customers: pd.DataFrame  # one row per customer with events up to as_of
    without_events: int  # customers of the partition whose every event lies after as_of
    purchases: pd.DataFrame  # category, product_id, purchases: best-seller counts of the recent window


def score_partition(events: pd.DataFrame, as_of: pd.Timestamp, engine: SignalsEngine,
                    cfg: AudienceConfig, lists: dict[str, int] | None = None) -> PartitionResult:
    """events: the partition, sorted by user then time (every event of each of its users); lists: the lists by
    purpose to answer, name -> length (audiences/lists.py), written as `list_<name>` columns."""
    seen = events["user_id"].nunique()
    events = events[events["ts"] <= as_of].reset_index(drop=True)
    users, starts = np.unique(events["user_id"].to_numpy(), return_index=True)
    bounds = np.append(starts, len(events))
    asked = lists or {}
    lists_asked = lists_request(asked)
    # A model that reads the shopper's whole history (models.encoding.HISTORY_COUNTS, HISTORY_TIMES) counts every
    # event it is given: trimming older views would change its answer from /predict's.
    every_event = reads_every_event(asked) or engine.predictor.model.cfg.reads_whole_history
    timelines = Timelines(events, bounds, engine.window, every_event=every_event)
    moment = as_of.to_pydatetime()
    filters = Filters(exclude_purchased=True)
    rows: list[dict] = []
    representation: list[np.ndarray] = []
    for first in range(0, len(users), cfg.scoring.batch_size):
        batch = np.arange(first, min(first + cfg.scoring.batch_size, len(users)))
        requests = [ShopperRequest.model_construct(
            events=timeline, user_id=str(users[u]), as_of=moment, k=cfg.scoring.k,
            k_categories=cfg.scoring.k_categories, k_brands=cfg.scoring.k_brands, filters=filters,
            lists=lists_asked)
            for u, timeline in zip(batch, timelines.rows(batch))]
        scored = engine.predict_scored(requests, [moment] * len(requests))
        representation.append(scored.representation)
        rows += [_signals_row(s, h, n, moment, cfg) | list_values(s, asked)
                 for s, h, n in zip(scored.signals, scored.histories, timelines.n_events[batch])]
    customers = pd.DataFrame(rows, columns=SIGNAL_COLUMNS + [c for c in rows[0] if c not in SIGNAL_COLUMNS]
                             if rows else SIGNAL_COLUMNS)
    customers = customers.join(_purchase_summary(events), on="user_id")
    customers["orders"] = customers["orders"].fillna(0).astype("int64")
    customers["spend"] = customers["spend"].fillna(0.0)
    customers["purchased_categories"] = [c if isinstance(c, list) else [] for c in customers["purchased_categories"]]
    customers["days_since_last_purchase"] = (as_of - customers["last_purchase_ts"]).dt.total_seconds() / DAY_S
    customers["representation"] = list(np.concatenate(representation)) if representation else []
    customers["cross_sell_products"] = _cross_sell(customers, timelines, moment, engine, cfg)
    recent = events[(events["event_type"] == "purchase") & (events["ts"] > as_of - pd.Timedelta(days=cfg.best_sellers.days))]
    purchases = recent.groupby(["category", "product_id"]).size().rename("purchases").reset_index()
    return PartitionResult(customers, seen - len(users), purchases)


SIGNAL_COLUMNS = ["user_id", "events", "last_event_ts", "days_since_last_event", "session_live", "latest_session_id",
                  "purchase_intent", "churn_risk", "uplift", "top_products", "top_product_scores", "top_categories",
                  "top_brands", "segments", "cart_products", "session_views", "session_viewed_products",
                  "browsing_category", "rule_segments", "model_name", "model_version", "model_run_id"]


def _signals_row(signals, history: ShopperHistory, n_events: int, moment: datetime, cfg: AudienceConfig) -> dict:
    idle_s = history.idle_seconds(moment)
    latest = history.events[int(np.flatnonzero(history.starts_session)[-1]):]
    views = [e for e in latest if e.event_type == "view"]
    # Most recent first, each product once: what a browse-abandon message shows.
    viewed = list(dict.fromkeys(e.product_id for e in reversed(views)))
    browsing = next((e.category for e in reversed(views) if e.category is not None), None)
    return {
        "user_id": signals.user_id, "events": int(n_events),
        "last_event_ts": history.events[-1].ts, "days_since_last_event": idle_s / DAY_S,
        "session_live": idle_s <= SESSION_GAP_MINUTES * 60, "latest_session_id": latest[-1].session_id,
        "purchase_intent": signals.purchase_intent, "churn_risk": signals.churn_risk, "uplift": signals.uplift,
        "top_products": [p["product_id"] for p in signals.products],
        "top_product_scores": [p["score"] for p in signals.products],
        "top_categories": [a["name"] for a in signals.categories], "top_brands": [a["name"] for a in signals.brands],
        "segments": list(signals.segments), "cart_products": sorted(history.in_cart),
        "session_views": history.latest_session.views, "session_viewed_products": viewed,
        "browsing_category": browsing,
        # The audience rules (audiences/thresholds.yaml) through the endpoint's rule code.
        "rule_segments": segments_for(cfg.rules, history, moment, signals.purchase_intent, signals.churn_risk,
                                      signals.uplift),
        "model_name": signals.model.name, "model_version": signals.model.version, "model_run_id": signals.model.run_id,
    }


def _purchase_summary(events: pd.DataFrame) -> pd.DataFrame:
    """Per user with a purchase: orders (sessions with a purchase), spend, last purchase, top categories."""
    bought = events[events["event_type"] == "purchase"]
    by_user = bought.groupby("user_id")
    summary = pd.DataFrame({"orders": by_user["session_id"].nunique(), "spend": by_user["price"].sum(),
                            "last_purchase_ts": by_user["ts"].max()})
    counts = bought.dropna(subset=["category"]).groupby(["user_id", "category"]).size().rename("n").reset_index()
    counts = counts.sort_values(["user_id", "n", "category"], ascending=[True, False, True], kind="stable")
    summary["purchased_categories"] = counts.groupby("user_id")["category"].agg(list)
    summary["bought_categories"] = summary["purchased_categories"]
    summary["purchased_categories"] = summary["purchased_categories"].map(
        lambda c: c[:PURCHASED_CATEGORIES] if isinstance(c, list) else [])
    return summary


def _cross_sell(customers: pd.DataFrame, timelines: Timelines, moment: datetime, engine: SignalsEngine,
                cfg: AudienceConfig) -> list[list[str] | None]:
    """Top products from categories a dormant customer has not bought (the endpoint's category filter)."""
    out: list[list[str] | None] = [None] * len(customers)
    dormant = np.flatnonzero(customers["rule_segments"].map(lambda s: "dormant" in s).to_numpy())
    every = set(engine.catalogue.encoder.categories.tokens)
    for first in range(0, len(dormant), cfg.scoring.batch_size):
        rows = dormant[first:first + cfg.scoring.batch_size]
        requests = []
        for u, timeline in zip(rows, timelines.rows(rows)):
            bought = customers["bought_categories"].iat[u]
            others = sorted(every - set(bought)) if isinstance(bought, list) else None
            requests.append(ShopperRequest.model_construct(
                events=timeline, user_id=customers["user_id"].iat[u], as_of=moment,
                k=cfg.scoring.k, k_categories=1, k_brands=1,
                filters=Filters(exclude_purchased=True, categories=others)))
        for u, signals in zip(rows, engine.predict(requests, [moment] * len(requests))):
            out[u] = [p["product_id"] for p in signals.products]
    return out
