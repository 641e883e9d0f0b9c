"""A simulated experiment whose effect is known: exposures of shoppers randomised into arms, and canonical
events in which each arm converts at its configured rate within the window after a shopper's first
exposure. Around those: repeat exposures, purchases before the first exposure and after the window, and
views, none of which may count. The readout must recover `truth` inside its intervals (tests, notebook 03,
`make demo`).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd

from events.schema import CANONICAL_COLUMNS

ITEMS_MEAN_EXTRA = 0.5
"""A converting shopper buys 1 + Poisson(0.5) items within the window ..."""
PRICE_LOG_MEAN, PRICE_LOG_SD = 3.5, 0.6
"""... at log-normal prices: mean exp(3.5 + 0.6^2 / 2) = 39.6."""


@dataclass(frozen=True)
class SimulatedExperiment:
    exposures: pd.DataFrame
    events: pd.DataFrame
    truth: pd.DataFrame
    """Per arm: the true conversion and revenue per shopper within the window."""


def simulate_experiment(name: str, shares: dict[str, float], conversion: dict[str, float], n_users: int,
                        window_days: float = 7.0, days: float = 14.0, seed: int = 0,
                        start: str = "2026-03-01", exposures: pd.DataFrame | None = None) -> SimulatedExperiment:
    """`n_users` shoppers drawn into arms by `shares`, exposed over `days`; or, given `exposures` (e.g. a real
    server's log), outcomes for those shoppers in the arms they were logged in."""
    rng = np.random.default_rng(seed)
    if exposures is None:
        exposures = _exposures(rng, name, shares, n_users, pd.Timestamp(start, tz="UTC"), days)
    first = (exposures.sort_values("ts", kind="stable").groupby("user_id", as_index=False)
             .agg(arm=("arm", "first"), ts=("ts", "min")))
    window = pd.Timedelta(days=window_days)
    p = first["arm"].map(conversion).to_numpy(float)
    converts = rng.random(len(first)) < p
    items = 1 + rng.poisson(ITEMS_MEAN_EXTRA, len(first))
    buyers = first[converts].loc[lambda d: d.index.repeat(items[converts])]
    offsets = rng.uniform(0.001, 0.999, len(buyers)) * window
    inside = _purchases(rng, buyers["user_id"], buyers["ts"] + offsets)
    # never counted: before the first exposure, after the window; views throughout
    before = first.sample(frac=0.3, random_state=seed)
    after = first.sample(frac=0.2, random_state=seed + 1)
    outside = [_purchases(rng, before["user_id"], before["ts"] - pd.Timedelta(hours=1)),
               _purchases(rng, after["user_id"], after["ts"] + window + pd.Timedelta(hours=1))]
    views = _purchases(rng, first["user_id"], first["ts"] + pd.Timedelta(minutes=1)).assign(event_type="view")
    end = exposures["ts"].max() + window + pd.Timedelta(days=2)
    horizon = pd.DataFrame({"user_id": ["~end"], "session_id": ["~end"], "ts": [end], "event_type": ["view"],
                            "product_id": ["p0"], "category": [None], "brand": [None], "price": [None]})
    start_marker = horizon.assign(ts=exposures["ts"].min() - pd.Timedelta(days=2), user_id="~start", session_id="~start")
    events = (pd.concat([start_marker, inside, *outside, views, horizon], ignore_index=True)
              .sort_values(["user_id", "ts"], kind="stable").reset_index(drop=True))[list(CANONICAL_COLUMNS)]
    price_mean = float(np.exp(PRICE_LOG_MEAN + PRICE_LOG_SD**2 / 2))
    truth = pd.DataFrame({"conversion": conversion}).rename_axis("arm")
    truth["revenue_per_user"] = truth["conversion"] * (1 + ITEMS_MEAN_EXTRA) * price_mean
    return SimulatedExperiment(exposures.reset_index(drop=True), events, truth)


def _exposures(rng: np.random.Generator, name: str, shares: dict[str, float], n_users: int, start: pd.Timestamp,
               days: float) -> pd.DataFrame:
    arms = rng.choice(list(shares), size=n_users, p=list(shares.values()))
    users = np.array([f"sim-{i}" for i in range(n_users)])
    repeats = 1 + rng.poisson(0.5, n_users)  # shoppers come back: their later exposures change nothing
    user_of = np.repeat(np.arange(n_users), repeats)
    first_day = rng.uniform(0, days, n_users)
    later = np.where(np.arange(len(user_of)) == np.searchsorted(user_of, user_of), 0.0, rng.uniform(0, 2, len(user_of)))
    ts = (start + pd.to_timedelta(first_day[user_of] + later, unit="D")).floor("us")  # the log's resolution
    frame = pd.DataFrame({"ts": ts, "experiment": name, "arm": arms[user_of], "user_id": users[user_of],
                          "model_version": None, "request_id": [uuid.UUID(bytes=rng.bytes(16)).hex for _ in user_of]})
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def _purchases(rng: np.random.Generator, users: pd.Series, ts: pd.Series) -> pd.DataFrame:
    n = len(users)
    return pd.DataFrame({"user_id": users.to_numpy(), "session_id": [f"{u}-s" for u in users], "ts": ts.to_numpy(),
                         "event_type": "purchase", "product_id": rng.integers(0, 500, n).astype(str),
                         "category": None, "brand": None, "price": rng.lognormal(PRICE_LOG_MEAN, PRICE_LOG_SD, n)})
