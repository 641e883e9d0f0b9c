"""RFM segments on the scoring date: quintile scores of recency, frequency and monetary value, and the
standard 11-segment map.

Only customers with a purchase up to as_of are scored (the others have no R, F or M). Each score is
ceil(5 x percentile rank) among them, tied customers sharing the lowest rank among them (the many one-order customers all get F = 1): 5 = most recent purchase, most
orders, most spend. The segment reads R and FM = round-half-up of (F + M) / 2 through the grid below
(rows R 5..1, columns FM 1..5), which makes the usual overlapping range table (Champions R 4-5 / FM 4-5,
... Lost R 1 / FM 1-2) a function: every (R, FM) pair has exactly one segment.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SEGMENTS = ("Champions", "Loyal", "Potential loyalists", "New", "Promising", "Need attention", "About to sleep",
            "At risk", "Cannot lose them", "Hibernating", "Lost")
GRID = {  # R -> segment for FM = 1..5
    5: ("New", "Potential loyalists", "Potential loyalists", "Champions", "Champions"),
    4: ("Promising", "Potential loyalists", "Potential loyalists", "Loyal", "Champions"),
    3: ("About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"),
    2: ("Hibernating", "Hibernating", "At risk", "At risk", "Cannot lose them"),
    1: ("Lost", "Lost", "At risk", "Cannot lose them", "Cannot lose them"),
}


def quintile(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """1..5 by percentile rank; ties take the lowest rank among them."""
    pct = (values if higher_is_better else -values).rank(pct=True, method="min")
    return np.ceil(pct * 5).clip(1, 5).astype("int64")


def rfm_scores(days_since_last_purchase: pd.Series, orders: pd.Series, spend: pd.Series) -> pd.DataFrame:
    """Indexed like the inputs (customers with a purchase only): r_score, f_score, m_score, rfm_segment."""
    r = quintile(days_since_last_purchase, higher_is_better=False)
    f, m = quintile(orders), quintile(spend)
    fm = np.floor((f + m) / 2 + 0.5).astype("int64")
    segment = [GRID[ri][fmi - 1] for ri, fmi in zip(r, fm)]
    return pd.DataFrame({"r_score": r, "f_score": f, "m_score": m, "rfm_segment": segment}, index=orders.index)


def audience_name(segment: str) -> str:
    """'Cannot lose them' -> 'rfm_cannot_lose_them'."""
    return "rfm_" + segment.lower().replace(" ", "_")
