"""Exposures joined with outcomes: one row per exposed shopper with their arm, whether they purchased within
the window after their first exposure, and the revenue of those purchases.

Intention to treat: a shopper counts from their first exposure, in the arm of that exposure. Left out, and
counted in `JoinCounts` (nothing is dropped silently): shoppers logged in more than one arm (the split was
changed mid-experiment), and shoppers whose window does not lie inside the events table (exposed before it
starts or too close to its end to observe the whole window).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from events.errors import UserFacingError

PURCHASE = "purchase"


@dataclass(frozen=True)
class JoinCounts:
    exposures: int
    users: int
    in_several_arms: int
    incomplete_window: int
    purchases_without_price: int


def choose_experiment(exposures: pd.DataFrame, name: str | None) -> str:
    """`name`, or the only experiment in the log; an error lists the names when it is ambiguous or absent."""
    names = sorted(exposures["experiment"].unique())
    if name is None:
        if len(names) != 1:
            raise UserFacingError(f"the log holds {len(names)} experiments ({', '.join(names) or 'none'}); "
                                  "name one with --experiment")
        return names[0]
    if name not in names:
        raise UserFacingError(f"--experiment {name}: not in the log (it holds: {', '.join(names) or 'none'})")
    return name


def per_user_outcomes(exposures: pd.DataFrame, events: pd.DataFrame,
                      window: pd.Timedelta) -> tuple[pd.DataFrame, JoinCounts]:
    """(user_id, arm, first_exposure, converted, revenue) per shopper of one experiment's exposures."""
    arms_per_user = exposures.groupby("user_id")["arm"].nunique()
    several = arms_per_user.index[arms_per_user > 1]
    single = exposures[~exposures["user_id"].isin(several)]
    users = (single.sort_values("ts", kind="stable").groupby("user_id", as_index=False)
             .agg(arm=("arm", "first"), first_exposure=("ts", "min")))
    start, end = events["ts"].min(), events["ts"].max()
    observable = (users["first_exposure"] >= start) & (users["first_exposure"] + window <= end)
    incomplete = int((~observable).sum())
    users = users[observable].reset_index(drop=True)

    purchases = events.loc[(events["event_type"] == PURCHASE) & events["user_id"].isin(users["user_id"]),
                           ["user_id", "ts", "price"]]
    joined = purchases.merge(users[["user_id", "first_exposure"]], on="user_id")
    inside = joined[(joined["ts"] > joined["first_exposure"]) & (joined["ts"] <= joined["first_exposure"] + window)]
    per_user = inside.groupby("user_id").agg(purchases=("ts", "size"), revenue=("price", "sum"))
    users["converted"] = users["user_id"].map(per_user["purchases"]).fillna(0).gt(0).astype(int)
    users["revenue"] = users["user_id"].map(per_user["revenue"]).fillna(0.0).astype(float)
    counts = JoinCounts(exposures=len(exposures), users=int(exposures["user_id"].nunique()),
                        in_several_arms=len(several), incomplete_window=incomplete,
                        purchases_without_price=int(inside["price"].isna().sum()))
    return users, counts
