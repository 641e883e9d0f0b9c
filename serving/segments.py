"""Segment labels the activation layer acts on, from the scores and the request's events.

Thresholds live in serving/segments.yaml (the one place they are written down, with what each rule
means); the dataclasses have no defaults so that a missing key is an error, not a silent fallback.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from serving.history import ShopperHistory
from serving.api_types import Segment
from events.config_io import load_config
from events.errors import UserFacingError


@dataclass(frozen=True)
class HighIntentRule:
    min_purchase_intent: float
    max_idle_minutes: float


@dataclass(frozen=True)
class CartAbandonerRule:
    idle_minutes: float


@dataclass(frozen=True)
class BrowseAbandonerRule:
    idle_minutes: float
    min_views: int


@dataclass(frozen=True)
class AtRiskRule:
    min_churn_risk: float
    require_purchase: bool


@dataclass(frozen=True)
class DormantRule:
    idle_days: float


@dataclass(frozen=True)
class PersuadableRule:
    min_uplift: float


@dataclass(frozen=True)
class SegmentRules:
    high_intent: HighIntentRule
    cart_abandoner: CartAbandonerRule
    browse_abandoner: BrowseAbandonerRule
    at_risk: AtRiskRule
    dormant: DormantRule
    persuadable: PersuadableRule


def load_rules(path: Path, overrides: tuple[str, ...] = ()) -> SegmentRules:
    try:
        return load_config(SegmentRules, path, list(overrides))
    except TypeError as err:  # a section or key missing from the file
        raise UserFacingError(f"segment rules {path}: {err}") from err


def segments_for(rules: SegmentRules, history: ShopperHistory, as_of: datetime,
                 purchase_intent: float, churn_risk: float, uplift: float | None = None) -> list[Segment]:
    """`uplift`: None when the model has no uplift head (then no shopper is persuadable)."""
    if history.empty:
        return []
    idle_minutes = history.idle_seconds(as_of) / 60
    session = history.latest_session
    dormant = idle_minutes >= rules.dormant.idle_days * 24 * 60
    segments: list[Segment] = []
    if (purchase_intent >= rules.high_intent.min_purchase_intent
            and idle_minutes <= rules.high_intent.max_idle_minutes and session.purchases == 0):
        segments.append("high_intent")
    if history.in_cart and idle_minutes >= rules.cart_abandoner.idle_minutes:
        segments.append("cart_abandoner")
    if (session.views >= rules.browse_abandoner.min_views and session.carts == 0 and session.purchases == 0
            and idle_minutes >= rules.browse_abandoner.idle_minutes):
        segments.append("browse_abandoner")
    if (churn_risk >= rules.at_risk.min_churn_risk and not dormant
            and (history.purchased or not rules.at_risk.require_purchase)):
        segments.append("at_risk")
    if dormant:
        segments.append("dormant")
    if uplift is not None and uplift >= rules.persuadable.min_uplift:
        segments.append("persuadable")
    return segments
