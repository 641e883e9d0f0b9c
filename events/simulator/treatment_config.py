"""Knobs of the randomised treatment (a message or discount sent mid-session) and its causal effect.

Off by default: with `enabled: false` the simulator draws, writes and summarises exactly what it did before.
What each knob does is in events/simulator/treatment.py.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TreatmentConfig:
    enabled: bool = False
    """Write treatments.parquet (the randomised assignment) and oracle_uplift.parquet (the true uplift)."""
    share: float = 0.5
    """Share of decision points that are treated, drawn at random (0.5 gives the most power per point)."""
    decision_steps: int = 4
    """The decision step of each session is drawn uniformly from 0 .. decision_steps - 1 (events seen so far
    minus one); a session still going on at that step without a purchase is a decision point."""
    do_not_disturb_within_hours: float = 1.5
    """Do not disturb: a session that starts less than this many hours after the shopper's previous one ended
    (a shopper who is back that soon needs no reminder, and a message puts them off) ..."""
    put_off_logit: float = 1.5
    """... has its purchase-propensity logit lowered by this much for the rest of the session."""
    sure_thing_purchases: int = 1
    """Sure thing: a shopper with at least this many earlier purchases buys or not regardless (effect 0)."""
    lost_cause_sessions: int = 6
    """Lost cause: an empty cart after at least this many earlier sessions, none with a purchase (effect 0)."""
    lift_logit_mean: float = 1.0
    """Persuadables (everyone else): the propensity logit rises by this much with an empty cart ..."""
    cart_lift_logit: float = 2.0
    """... plus this much with an item in the cart (hesitating over it: the message tips the balance) ..."""
    lift_per_sensitivity: float = 0.5
    """... plus this much per unit of price sensitivity above the mean (a latent trait: a discount matters to
    bargain hunters) ..."""
    lift_logit_sd: float = 0.25
    """... plus customer noise N(0, this) that nothing in the events reveals; the lift is clipped at 0."""


def treatment_checks(config: TreatmentConfig) -> list[tuple[str, bool, str]]:
    """(key, ok, message) for simulator.config.validate."""
    return [
        ("treatment.share", 0 < config.share < 1, "must be in (0, 1): both arms need shoppers"),
        ("treatment.decision_steps", config.decision_steps >= 1, "must be at least 1"),
        ("treatment.do_not_disturb_within_hours", config.do_not_disturb_within_hours >= 0, "must not be negative"),
        ("treatment.put_off_logit", config.put_off_logit >= 0, "must not be negative (it is subtracted)"),
        ("treatment.sure_thing_purchases", config.sure_thing_purchases >= 1, "must be at least 1"),
        ("treatment.lost_cause_sessions", config.lost_cause_sessions >= 1, "must be at least 1"),
        ("treatment.lift_logit_sd", config.lift_logit_sd >= 0, "must not be negative"),
    ]
