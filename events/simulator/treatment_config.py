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
    lift_logit_mean: float = 1.0
    """Responsive customers' purchase-propensity logit rises by this much for the rest of the session ..."""
    lift_per_sensitivity: float = 1.5
    """... plus this much per unit of price sensitivity above the mean (a discount matters to bargain hunters) ..."""
    lift_logit_sd: float = 0.25
    """... plus customer noise N(0, this) that nothing in the events reveals; the lift is clipped at 0."""
    do_not_disturb_share: float = 0.15
    """Mean share of customers whom a message puts off; each one's chance is proportional to their visit rate
    (frequent visitors need no reminder and are the ones it annoys), capped at 1."""
    put_off_logit: float = 1.5
    """Their propensity logit falls by this much for the rest of the session."""


def treatment_checks(config: TreatmentConfig) -> list[tuple[str, bool, str]]:
    """(key, ok, message) for simulator.config.validate."""
    return [
        ("treatment.share", 0 < config.share < 1, "must be in (0, 1): both arms need shoppers"),
        ("treatment.decision_steps", config.decision_steps >= 1, "must be at least 1"),
        ("treatment.lift_logit_sd", config.lift_logit_sd >= 0, "must not be negative"),
        ("treatment.do_not_disturb_share", 0 <= config.do_not_disturb_share <= 1, "must be in [0, 1]"),
        ("treatment.put_off_logit", config.put_off_logit >= 0, "must not be negative (it is subtracted)"),
    ]
