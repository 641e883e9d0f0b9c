"""Per arm: conversion (Wilson interval) and revenue per shopper (t interval); per arm against the control:
the differences with Welch's t interval and p-value (on the 0/1 conversions that is the unpooled two-
proportion z-test); over all arms: the sample-ratio-mismatch chi-square test of the shopper counts against
the configured shares. All from scipy; 95% intervals unless `confidence` says otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

SRM_ALPHA = 0.001
"""Below this p-value the split is not what was configured: the comparison cannot be trusted (exposures
lost or duplicated for one arm, a bug in the assignment) and the readout says so."""


@dataclass(frozen=True)
class SampleRatio:
    chi2: float
    p_value: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < SRM_ALPHA


def arm_table(users: pd.DataFrame, control: str, shares: dict[str, float], confidence: float = 0.95) -> pd.DataFrame:
    """One row per configured arm (index `arm`, in the configuration's order); `users` has arm, converted, revenue."""
    rows = {}
    groups = {arm: g for arm, g in users.groupby("arm")}
    empty = users.iloc[:0]
    base = groups.get(control, empty)
    total = sum(len(groups.get(arm, empty)) for arm in shares)
    for arm, share in shares.items():
        g = groups.get(arm, empty)
        row = {"users": len(g), "expected_share": share, "realised_share": len(g) / total if total else math.nan,
               "converted": int(g["converted"].sum()), "revenue": float(g["revenue"].sum())}
        row.update(_proportion(int(g["converted"].sum()), len(g), confidence))
        row.update(_mean("revenue_per_user", g["revenue"].to_numpy(float), confidence))
        if arm != control:
            for name, column in (("conversion", "converted"), ("revenue_per_user", "revenue")):
                row.update(_difference(name, g[column].to_numpy(float), base[column].to_numpy(float), confidence))
        rows[arm] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "arm"
    return table


def sample_ratio(users_per_arm: pd.Series, shares: dict[str, float]) -> SampleRatio:
    observed = np.array([users_per_arm.get(arm, 0) for arm in shares], dtype=float)
    expected = np.array(list(shares.values())) * observed.sum()
    if observed.sum() == 0:
        return SampleRatio(math.nan, math.nan)
    result = stats.chisquare(observed, expected)
    return SampleRatio(float(result.statistic), float(result.pvalue))


def _proportion(successes: int, n: int, confidence: float) -> dict[str, float]:
    if n == 0:
        return {"conversion": math.nan, "conversion_ci_low": math.nan, "conversion_ci_high": math.nan}
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return {"conversion": successes / n, "conversion_ci_low": float(ci.low), "conversion_ci_high": float(ci.high)}


def _mean(name: str, values: np.ndarray, confidence: float) -> dict[str, float]:
    mean = float(values.mean()) if len(values) else math.nan
    if len(values) < 2 or values.std() == 0:
        return {name: mean, f"{name}_ci_low": mean, f"{name}_ci_high": mean}
    ci = stats.ttest_1samp(values, 0.0).confidence_interval(confidence)
    return {name: mean, f"{name}_ci_low": float(ci.low), f"{name}_ci_high": float(ci.high)}


def _difference(name: str, arm: np.ndarray, control: np.ndarray, confidence: float) -> dict[str, float]:
    """arm - control, its interval and the two-sided p-value of "no difference"."""
    keys = (f"{name}_diff", f"{name}_diff_ci_low", f"{name}_diff_ci_high", f"{name}_p_value", f"{name}_lift")
    if len(arm) < 2 or len(control) < 2 or (arm.std() == 0 and control.std() == 0):
        return dict.fromkeys(keys, math.nan)
    diff = float(arm.mean() - control.mean())
    test = stats.ttest_ind(arm, control, equal_var=False)
    ci = test.confidence_interval(confidence)
    lift = diff / control.mean() if control.mean() else math.nan
    return dict(zip(keys, (diff, float(ci.low), float(ci.high), float(test.pvalue), lift)))
