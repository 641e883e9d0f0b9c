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
from models.uplift import N_DECISION, decision_inputs
from training.labels import NO_SPLIT, SplitDates, naive_utc, split_of_interval

TREATMENTS_FILE = "treatments.parquet"  # the simulator's names (events/simulator/writer.py); a shop's own
UPLIFT_ORACLE_FILE = "oracle_uplift.parquet"  # randomised test logged in this layout works the same
ENCODE_CHUNK = 2048


@dataclass
class Windows:
    """The model's input windows ending at given rows: each user's last max_len events up to the row."""

    encoded: dict[str, np.ndarray]  # every event's integer features (EventEncoder.encode)
    start: np.ndarray  # (N,) first row of each window
    length: np.ndarray  # (N,) its number of events; the row itself is the last
    max_len: int

    def batch(self, index: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Windows `index` as right-padded (b, L) tensors, as every window is, and (b,) their last position."""
        s, n = self.start[index], self.length[index]
        rows = s[:, None] + np.arange(self.max_len)[None, :]  # (b, L)
        valid = np.arange(self.max_len)[None, :] < n[:, None]
        size = len(next(iter(self.encoded.values())))
        return ({name: torch.from_numpy(np.where(valid, self.encoded[name][np.minimum(rows, size - 1)], 0))
                 for name in FEATURES}, torch.from_numpy(n - 1))


@dataclass
class DecisionPoints:
    points: pd.DataFrame  # one row per decision point: row (in `events`), user_id, session_id, step, treated,
    #                       purchased, split, and from the oracle (NaN without one) true_uplift, p_control
    events: pd.DataFrame  # canonical events sorted by user then time, with `step` (index within the session)
    state: torch.Tensor  # (N, D) encoder state after the decision event
    intent_logit: torch.Tensor  # (N,) the intent head's logit there
    decision: torch.Tensor  # (N, N_DECISION) the decision's explicit state (models.uplift.decision_inputs)
    windows: Windows  # the input windows ending at each decision event (for fine-tuning the encoder)

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
    windows = windows_at(events, points["row"].to_numpy(), model, encoder)
    state, intent = states_of(model, windows)
    return DecisionPoints(points, events, state, intent, decisions_of(windows), windows)


def windows_at(events: pd.DataFrame, rows: np.ndarray, model: SessionSignalsModel, encoder: EventEncoder) -> Windows:
    """The windows after each of `rows` (events sorted by user, then time)."""
    user = events["user_id"].to_numpy()
    user_start = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    first_row = user_start[np.searchsorted(user_start, rows, side="right") - 1]
    start = np.maximum(first_row, rows - model.cfg.max_len + 1)
    return Windows(encoder.encode(events), start, rows - start + 1, model.cfg.max_len)


def state_at(model: SessionSignalsModel, windows: Windows, index: np.ndarray) -> torch.Tensor:
    """(b, D) the encoder's state after the last event of windows `index` (with gradients when enabled)."""
    batch, last = windows.batch(index)
    return model.encode(batch)[torch.arange(len(index)), last]


@torch.inference_mode()
def states_of(model: SessionSignalsModel, windows: Windows) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) the encoder's state after every window, (N,) the intent logit there."""
    n = len(windows.start)
    states = [state_at(model, windows, np.arange(lo, min(lo + ENCODE_CHUNK, n))) for lo in range(0, n, ENCODE_CHUNK)]
    state = torch.cat(states) if states else torch.zeros(0, model.cfg.d_model)
    return state, model.intent_logit(state)


@torch.inference_mode()
def decisions_of(windows: Windows) -> torch.Tensor:
    """(N, N_DECISION) the explicit state after every window; read from the events alone, so the same for
    any encoder."""
    n = len(windows.start)
    parts = []
    for lo in range(0, n, ENCODE_CHUNK):
        batch, last = windows.batch(np.arange(lo, min(lo + ENCODE_CHUNK, n)))
        parts.append(decision_inputs(batch, torch.arange(len(last)), last))
    return torch.cat(parts) if parts else torch.zeros(0, N_DECISION)


def encode_at(events: pd.DataFrame, rows: np.ndarray, model: SessionSignalsModel,
              encoder: EventEncoder) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's state after each of `rows`, reading that user's last max_len events up to it."""
    return states_of(model, windows_at(events, rows, model, encoder))
