"""Small helpers shared by the baselines: timestamps as integers, timestamps of split boundaries."""
from __future__ import annotations

import numpy as np
import pandas as pd

US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S


def ts_us(ts: pd.Series) -> np.ndarray:
    """(N,) int64 microseconds since the epoch, UTC; accepts tz-aware (any zone) or naive (taken as UTC)."""
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.to_numpy(dtype="datetime64[us]").astype(np.int64)


def moment_us(t: pd.Timestamp) -> int:
    """One moment as int64 microseconds since the epoch, UTC (naive taken as UTC)."""
    t = pd.Timestamp(t)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return int(np.datetime64(t, "us").astype(np.int64))
