"""Daily seasonality as a time change.

Visits arrive at rate `rate * profile(hour of day)` with the profile averaging 1 over a day. Such a
process is a homogeneous one run on a warped clock ("activity time") whose days have exactly the length
of real days but whose hours are stretched where the profile is high. Gaps are drawn on the warped clock
and mapped back, which keeps the visit process memoryless on it: the churn oracle relies on that.
Times here are float days since the simulation start.
"""
from __future__ import annotations

import numpy as np


class DailyClock:
    def __init__(self, hourly_profile: list[float], utc_offset_hours: int) -> None:
        local = np.asarray(hourly_profile, dtype=np.float64)
        if local.shape != (24,) or (local < 0).any() or local.sum() <= 0:
            raise ValueError("hourly_profile needs 24 non-negative weights, not all zero")
        # Profile per UTC hour: local hour = UTC hour + offset.
        utc = np.roll(local, -utc_offset_hours)
        # Floor at a tiny intensity so the warp stays invertible in hours with a zero weight.
        utc = np.maximum(utc / utc.mean(), 1e-6)
        self._hours = np.arange(25, dtype=np.float64) / 24.0                  # real day fraction
        self._warped = np.concatenate([[0.0], np.cumsum(utc)]) / utc.sum()    # warped day fraction

    def to_warped(self, days: np.ndarray) -> np.ndarray:
        whole = np.floor(days)
        return whole + np.interp(days - whole, self._hours, self._warped)

    def to_real(self, warped_days: np.ndarray) -> np.ndarray:
        whole = np.floor(warped_days)
        return whole + np.interp(warped_days - whole, self._warped, self._hours)
