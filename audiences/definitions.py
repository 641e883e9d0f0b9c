"""Which customers each audience holds and which fields its file carries (what an activation needs).

Membership reads the customers' columns: the audience rules' labels (`rule_segments`, computed by the
endpoint's rule code with audiences/thresholds.yaml), the RFM segment and the order count.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from audiences.config import AudienceConfig
from audiences.rfm import SEGMENTS, audience_name

SEED_SEGMENTS = ("Champions", "Promising")


@dataclass(frozen=True)
class Audience:
    name: str
    members: Callable[[pd.DataFrame], np.ndarray]  # customers -> (N,) bool
    fields: tuple[str, ...]  # besides user_id
    meaning: str


def labelled(label: str, max_idle_days: float | None = None) -> Callable[[pd.DataFrame], np.ndarray]:
    def members(c: pd.DataFrame) -> np.ndarray:
        inside = np.array([label in s for s in c["rule_segments"]], dtype=bool)
        if max_idle_days is not None:
            inside &= (c["days_since_last_event"] <= max_idle_days).to_numpy()
        return inside
    return members


def is_seed(c: pd.DataFrame, cfg: AudienceConfig) -> np.ndarray:
    return (c["rfm_segment"].isin(SEED_SEGMENTS) | (c["orders"] >= cfg.lookalikes.repeat_orders)).to_numpy()


def uplift_sign(sign: int) -> Callable[[pd.DataFrame], np.ndarray]:
    """Customers whose uplift has this sign (a model without an uplift head gives none: NaN compares false)."""
    return lambda c: (np.sign(c["uplift"].astype(np.float64).to_numpy()) == sign)


UPLIFT_AUDIENCES = [
    Audience("message_these", uplift_sign(1), ("uplift", "purchase_intent", "session_live", "top_products"),
             "a message now raises their chance of buying in this session (positive uplift): send it, largest first"),
    Audience("do_not_disturb", uplift_sign(-1), ("uplift", "purchase_intent"),
             "a message now lowers their chance of buying (negative uplift): suppress messages"),
]


def audiences(cfg: AudienceConfig, uplift: bool = False) -> list[Audience]:
    """Every audience file but `lookalikes` (written last: it needs every customer's nearest seed); the uplift
    audiences only for a model with an uplift head (`uplift`)."""
    stale = cfg.triggers.max_idle_days
    history = ("orders", "spend", "last_purchase_ts", "days_since_last_purchase", "purchased_categories")
    found = [
        Audience("high_intent", labelled("high_intent"),
                 ("purchase_intent", "latest_session_id", "browsing_category", "category_best_sellers", "top_products"),
                 "live session likely to end in a purchase; the category being browsed and its best-sellers"),
        Audience("cart_abandoners", labelled("cart_abandoner", stale),
                 ("purchase_intent", "days_since_last_event", "cart_products", "top_products"),
                 "products left in the cart; the cart's products"),
        Audience("browse_abandoners", labelled("browse_abandoner", stale),
                 ("purchase_intent", "days_since_last_event", "browsing_category", "session_viewed_products",
                  "top_products"),
                 "viewed, no cart, no purchase in the latest session; the viewed products"),
        Audience("suppress_ads", labelled("at_risk"), (), "churn risk above the threshold: ids to suppress"),
        Audience("outreach", labelled("at_risk"), ("churn_risk", *history, "rfm_segment", "top_products"),
                 "churn risk above the threshold, with the history customer service needs"),
        Audience("dormant", labelled("dormant"), ("days_since_last_event", *history, "cross_sell_products"),
                 "no activity for the dormant threshold; cross-sell from categories not bought"),
    ]
    for segment in SEGMENTS:
        found.append(Audience(audience_name(segment), lambda c, s=segment: (c["rfm_segment"] == s).to_numpy(),
                              ("r_score", "f_score", "m_score", "days_since_last_purchase", "orders", "spend"),
                              f"RFM segment {segment}"))
    found.append(Audience("lookalike_seeds", lambda c: is_seed(c, cfg), ("rfm_segment", "orders", "spend"),
                          "Champions, Promising and repeat buyers"))
    return found + (UPLIFT_AUDIENCES if uplift else [])


LOOKALIKES = Audience("lookalikes", lambda c: np.zeros(len(c), dtype=bool), ("similarity", "nearest_seed"),
                      "customers nearest to the seeds in the model's learned representation (seeds excluded)")
