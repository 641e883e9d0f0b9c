"""The uplift task's points: every randomised decision point of a shop (a message sent or not mid-session),
with the trained encoder's state there, the arm and the outcome.

Leakage rules (docs/DESIGN.md, "The uplift task"):
- a decision point belongs to the split whose window holds its whole session (as intent), with the split
  dates of the bundle whose encoder reads it, so test points were never inputs of the encoder's training;
- the state is read from the user's last `max_len` events up to and including the decision event: nothing
  after the decision (where the treatment shows) is an input, and the arm never is;
- the outcome is whether the session has a purchase after the decision step (decision points lie before the
  session's first purchase, so: whether the session has one at all).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from events.errors import UserFacingError
from events.loaders import read_events
from events.schema import EVENTS_FILE
from events.source import DatasetSource, file_sha256
from models.encoding import FEATURES, EventEncoder
from models.network import SessionSignalsModel
from training.labels import NO_SPLIT, SplitDates, naive_utc, split_of_interval

TREATMENTS_FILE = "treatments.parquet"  # the simulator's names (events/simulator/writer.py); a shop's own
UPLIFT_ORACLE_FILE = "oracle_uplift.parquet"  # randomised test logged in this layout works the same
ENCODE_CHUNK = 2048


@dataclass
class DecisionPoints:
    points: pd.DataFrame  # one row per decision point: row (in `events`), user_id, session_id, step, treated,
    #                       purchased, split, and from the oracle (NaN without one) true_uplift, p_control
    events: pd.DataFrame  # canonical events sorted by user then time, with `step` (index within the session)
    state: torch.Tensor  # (N, D) encoder state after the decision event
    intent_logit: torch.Tensor  # (N,) the intent head's logit there

    def rows(self, split: int) -> np.ndarray:
        return np.flatnonzero(self.points["split"].to_numpy() == split)


def split_of_bundle(meta: dict) -> SplitDates:
    """The split the bundle's encoder was trained and evaluated with (its meta.json)."""
    s = meta.get("split")
    if not s:
        raise UserFacingError("the bundle's meta.json has no split: it was not made by `signals train`")
    return SplitDates(*(pd.Timestamp(s[k]) for k in ("start", "val_start", "test_start", "end")))


def check_same_data(folder: Path, meta: dict) -> None:
    """The bundle must have been trained on these very events: only then does its split keep the test points
    out of the encoder's training (its dataset key: name, events hash, split dates)."""
    dates = split_of_bundle(meta)
    source = DatasetSource(meta.get("dataset", ""), folder, None, file_sha256(folder / EVENTS_FILE))
    if meta.get("dataset_key") != source.dataset_key(dates):
        raise UserFacingError(f"the model was trained on other data than {folder / EVENTS_FILE} (dataset "
                              f"{meta.get('dataset')!r}, key {meta.get('dataset_key')}): its split would not keep "
                              "the test decision points out of its training; train it on these events first")


def read_decision_points(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events sorted by user then time with `step`, decision points joined to their event rows)."""
    path = folder / TREATMENTS_FILE
    if not path.is_file():
        raise UserFacingError(f"{path}: no treatment assignment; simulate one with "
                              f"`signals simulate ... treatment.enabled=true` (or log a randomised test in its layout)")
    events = read_events(folder).sort_values(["user_id", "ts"], kind="stable").reset_index(drop=True)
    events["step"] = events.groupby("session_id", sort=False).cumcount().astype(np.int32)
    treatments = pd.read_parquet(path, columns=["session_id", "step", "treated"])
    keys = events[["session_id", "step"]].reset_index(names="row")
    points = treatments.merge(keys, on=["session_id", "step"], how="left")
    missing = points["row"].isna()
    if missing.any():
        first = points[missing].iloc[0]
        raise UserFacingError(f"{path}: {int(missing.sum())} decision points name no event of {folder}/events.parquet "
                              f"(first: session {first.session_id!r}, step {first.step})")
    points["row"] = points["row"].astype(np.int64)
    oracle_path = folder / UPLIFT_ORACLE_FILE
    if oracle_path.is_file():
        oracle = pd.read_parquet(oracle_path, columns=["session_id", "step", "uplift", "p_control"])
        points = points.merge(oracle.rename(columns={"uplift": "true_uplift"}), on=["session_id", "step"], how="left")
    else:
        points["true_uplift"], points["p_control"] = np.nan, np.nan
    return events, points


def decision_points(folder: Path, model: SessionSignalsModel, encoder: EventEncoder, dates: SplitDates) -> DecisionPoints:
    events, points = read_decision_points(folder)
    session = events["session_id"].to_numpy()
    purchase = (events["event_type"] == "purchase").to_numpy()
    purchased = pd.Series(purchase).groupby(session).transform("any").to_numpy()
    ts = naive_utc(events["ts"])
    first = pd.Series(ts).groupby(session).transform("min").to_numpy()
    last = pd.Series(ts).groupby(session).transform("max").to_numpy()
    row = points["row"].to_numpy()
    if purchase_before := int((pd.Series(purchase).groupby(session).cumsum().to_numpy()[row] > 0).sum()):
        raise UserFacingError(f"{folder / TREATMENTS_FILE}: {purchase_before} decision points lie at or after their "
                              "session's first purchase (a decision is taken before it)")
    points["user_id"] = events["user_id"].to_numpy()[row]
    points["purchased"] = purchased[row].astype(np.int8)
    points["split"] = split_of_interval(first[row], last[row], dates)
    points = points[points["split"] != NO_SPLIT].reset_index(drop=True)
    state, intent = encode_at(events, points["row"].to_numpy(), model, encoder)
    return DecisionPoints(points, events, state, intent)


@torch.inference_mode()
def encode_at(events: pd.DataFrame, rows: np.ndarray, model: SessionSignalsModel,
              encoder: EventEncoder) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's state after each of `rows`, reading that user's last max_len events up to it."""
    encoded = encoder.encode(events)
    window = model.cfg.max_len
    user = events["user_id"].to_numpy()
    user_start = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    first_row = user_start[np.searchsorted(user_start, rows, side="right") - 1]
    start = np.maximum(first_row, rows - window + 1)
    length = rows - start + 1
    states, logits = [], []
    for lo in range(0, len(rows), ENCODE_CHUNK):
        s, n = start[lo:lo + ENCODE_CHUNK], length[lo:lo + ENCODE_CHUNK]
        index = s[:, None] + np.arange(window)[None, :]  # (b, L)
        valid = np.arange(window)[None, :] < n[:, None]  # right-padded, as every window is
        batch = {name: torch.from_numpy(np.where(valid, encoded[name][np.minimum(index, len(events) - 1)], 0))
                 for name in FEATURES}
        h = model.encode(batch)[torch.arange(len(s)), torch.from_numpy(n - 1)]  # (b, D)
        states.append(h)
        logits.append(model.intent_logit(h))
    d = model.cfg.d_model
    return (torch.cat(states) if states else torch.zeros(0, d)), (torch.cat(logits) if logits else torch.zeros(0))
