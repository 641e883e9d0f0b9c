"""Temporal split and the three task labels, exactly as docs/DESIGN.md defines them.

Leakage rules enforced here:
- a label belongs to one split, and only if everything it reads lies inside that split's window;
- intent is asked only at events before the session's first purchase;
- training churn cutoffs lie at least one horizon before the validation start.
Model inputs are truncated per split in `training.windows`, so nothing after a split's end is read.
"""
from __future__ import annotations

import logging
import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from events.errors import UserFacingError
from training.config import LabelConfig, SplitConfig

TRAIN, VAL, TEST, NO_SPLIT = 0, 1, 2, -1
SPLIT_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}
DAY = pd.Timedelta(days=1)
log = logging.getLogger(__name__)


@dataclass
class SplitDates:
    start: pd.Timestamp  # first event
    val_start: pd.Timestamp
    test_start: pd.Timestamp
    end: pd.Timestamp  # last event

    def input_end(self, split: int) -> pd.Timestamp | None:
        """Events at or after this moment are never inputs for `split` (None: no limit)."""
        return {TRAIN: self.val_start, VAL: self.test_start, TEST: None}[split]

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}


@dataclass
class Labels:
    events: pd.DataFrame  # canonical events sorted by user, time; plus `step` (index within session)
    dates: SplitDates
    intent: np.ndarray  # (N,) int8: 1 session converts later, 0 it does not, -1 not a prediction point
    intent_split: np.ndarray  # (N,) int8 split of the intent label
    next_index: np.ndarray  # (N,) int64 row of the next event in the same session, -1 at a session's end
    next_split: np.ndarray  # (N,) int8 split of the next-product label (by the next event's time)
    churn: pd.DataFrame  # one row per (user, cutoff): row, cutoff, gap_s, label, split


def split_dates(events: pd.DataFrame, cfg: SplitConfig, test_start: pd.Timestamp | None = None) -> SplitDates:
    start, end = events["ts"].min(), events["ts"].max()
    if test_start is None:
        # Whole-day windows start at midnight UTC, where the simulator's churn oracle is evaluated.
        test_start = (end - pd.Timedelta(days=cfg.test_days)).floor("D" if cfg.test_days >= 1 else "h")
    val_start = test_start - pd.Timedelta(days=cfg.val_days)
    if not start < val_start < test_start <= end:
        raise UserFacingError(
            f"split: data spans {start} .. {end}, too short for split.val_days={cfg.val_days} and "
            f"split.test_days={cfg.test_days} (validation would start {val_start}, test {test_start})"
        )
    return SplitDates(start, val_start, test_start, end)


def split_of_interval(first: np.ndarray, last: np.ndarray, dates: SplitDates) -> np.ndarray:
    """Split whose window holds [first, last] entirely; NO_SPLIT when the interval straddles a boundary."""
    v, t = np.datetime64(dates.val_start.tz_localize(None)), np.datetime64(dates.test_start.tz_localize(None))
    out = np.full(len(first), NO_SPLIT, dtype=np.int8)
    out[last < v] = TRAIN
    out[(first >= v) & (last < t)] = VAL
    out[first >= t] = TEST
    return out


def naive_utc(ts: pd.Series) -> np.ndarray:
    return ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")


def make_labels(events: pd.DataFrame, dates: SplitDates, cfg: LabelConfig) -> Labels:
    events = events.sort_values(["user_id", "ts"], kind="stable").reset_index(drop=True)
    events["step"] = events.groupby("session_id", sort=False).cumcount().astype(np.int32)
    ts = naive_utc(events["ts"])
    session = events["session_id"].to_numpy()

    # Intent: prediction points are events before the session's first purchase.
    is_purchase = (events["event_type"] == "purchase").to_numpy()
    purchases_so_far = _cumsum_by(session, is_purchase)
    converts = pd.Series(is_purchase).groupby(session).transform("any").to_numpy()
    before_first_purchase = purchases_so_far == 0
    intent = np.where(before_first_purchase, converts.astype(np.int8), -1).astype(np.int8)
    s_first = pd.Series(ts).groupby(session).transform("min").to_numpy()
    s_last = pd.Series(ts).groupby(session).transform("max").to_numpy()
    intent_split = np.where(intent >= 0, split_of_interval(s_first, s_last, dates), NO_SPLIT).astype(np.int8)

    # Next product: the product of the next event of the same session, labelled by that event's time.
    n = len(events)
    next_index = np.arange(1, n + 1, dtype=np.int64)
    same_session_next = np.zeros(n, dtype=bool)
    same_session_next[:-1] = session[1:] == session[:-1]
    next_index = np.where(same_session_next, next_index, -1)
    next_ts = ts[np.clip(next_index, 0, n - 1)]
    next_split = np.where(next_index >= 0, split_of_interval(next_ts, next_ts, dates), NO_SPLIT).astype(np.int8)

    churn = churn_examples(events, ts, is_purchase, dates, cfg)
    return Labels(events, dates, intent, intent_split, next_index, next_split, churn)


def merge_validation_into_training(labels: Labels) -> Labels:
    """Labels for the final refit on train + validation (`train.refit`): validation labels become training
    labels and training inputs run to `test_start`. Nothing reads the test window: a validation label
    lay wholly before `test_start` already, and labels straddling it stay in no split."""
    d = labels.dates
    churn = labels.churn.copy()
    churn.loc[churn["split"] == VAL, "split"] = TRAIN
    return dataclasses.replace(
        labels, dates=dataclasses.replace(d, val_start=d.test_start), churn=churn,
        intent_split=np.where(labels.intent_split == VAL, TRAIN, labels.intent_split).astype(np.int8),
        next_split=np.where(labels.next_split == VAL, TRAIN, labels.next_split).astype(np.int8))


def _cumsum_by(groups: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Running count of `flags` before-and-including each row, restarting at each new group (rows grouped contiguously)."""
    return pd.Series(flags.astype(np.int64)).groupby(groups, sort=False).cumsum().to_numpy()


def churn_cutoffs(dates: SplitDates, cfg: LabelConfig) -> list[tuple[pd.Timestamp, int]]:
    """(cutoff, split): one validation and one test cutoff, training cutoffs a horizon or more before validation."""
    horizon = pd.Timedelta(days=cfg.churn_horizon_days)
    lookback = pd.Timedelta(days=cfg.churn_lookback_days)
    # A split whose window is shorter than the horizon cannot hold a churn label (it would read the next
    # split): it gets none, said once, rather than refusing the run (click-only data has no churn at all).
    cutoffs = []
    for cutoff, split, window_end, setting in ((dates.val_start, VAL, dates.test_start, "split.val_days"),
                                               (dates.test_start, TEST, dates.end + DAY, "split.test_days")):
        if cutoff + horizon <= window_end:
            cutoffs.append((cutoff, split))
        else:
            log.warning("no %s churn labels: labels.churn_horizon_days=%s is longer than its window (%s)",
                        SPLIT_NAMES[split], cfg.churn_horizon_days, setting)
    t = dates.val_start - horizon
    while t - lookback >= dates.start - DAY:
        cutoffs.append((t, TRAIN))
        t -= pd.Timedelta(days=cfg.churn_cutoff_step_days)
    return cutoffs


def churn_examples(events: pd.DataFrame, ts: np.ndarray, is_purchase: np.ndarray, dates: SplitDates,
                   cfg: LabelConfig) -> pd.DataFrame:
    """Rows: customers with a purchase in [T - lookback, T), label 1 when no purchase in (T, T + horizon]."""
    horizon = np.timedelta64(int(cfg.churn_horizon_days * 86400e6), "us")
    lookback = np.timedelta64(int(cfg.churn_lookback_days * 86400e6), "us")
    users = events["user_id"].to_numpy()
    p_users, p_ts = users[is_purchase], ts[is_purchase]
    rows = np.arange(len(events))
    frames = []
    for cutoff, split in churn_cutoffs(dates, cfg):
        T = np.datetime64(cutoff.tz_localize(None), "us")
        active = np.unique(p_users[(p_ts >= T - lookback) & (p_ts < T)])
        if len(active) == 0:
            continue
        bought_after = np.unique(p_users[(p_ts > T) & (p_ts <= T + horizon)])
        before = ts < T
        # The user's last event before the cutoff: where the model reads its state.
        last_row = pd.Series(rows[before]).groupby(users[before]).max()
        last_row = last_row.reindex(active).to_numpy()
        frames.append(pd.DataFrame({
            "user_id": active,
            "cutoff": pd.Timestamp(cutoff),
            "row": last_row.astype(np.int64),
            "gap_s": (T - ts[last_row]) / np.timedelta64(1, "s"),
            "label": (~np.isin(active, bought_after)).astype(np.int8),
            "split": np.int8(split),
        }))
    if not frames:
        return pd.DataFrame({"user_id": pd.Series([], dtype=object), "cutoff": pd.Series([], dtype="datetime64[us, UTC]"),
                             "row": pd.Series([], dtype=np.int64), "gap_s": pd.Series([], dtype=np.float64),
                             "label": pd.Series([], dtype=np.int8), "split": pd.Series([], dtype=np.int8)})
    return pd.concat(frames, ignore_index=True)
