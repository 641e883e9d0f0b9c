"""User timelines cut into fixed windows for one split, as a torch Dataset.

Each user's events (truncated at the split's input end) are cut into windows of L events with a stride
of L/2. A window scores only its last L/2 positions (the first window scores all), so every event is
scored exactly once and with at least L/2 events of context. Labels of other splits are masked out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from models.encoding import FEATURES, churn_gap_feature
from models.vocab import N_RESERVED
from training.labels import Labels, naive_utc

IGNORE = -1


@dataclass
class SplitArrays:
    """Flat per-event arrays of one split (rows = kept events, sorted by user then time)."""
    features: dict[str, np.ndarray]  # name -> (N,) int64
    intent: np.ndarray  # (N,) -1 / 0 / 1
    next_product: np.ndarray  # (N,) product id of the next event, -1 when no label in this split
    next_category: np.ndarray
    next_brand: np.ndarray
    churn_row: np.ndarray  # (M,) row of each churn example, sorted
    churn_gap: np.ndarray  # (M,) float32 log1p(days away)
    churn_label: np.ndarray  # (M,) 0 / 1
    churn_key: np.ndarray  # (M,) index into Labels.churn
    event_row: np.ndarray  # (N,) row in Labels.events, to join predictions back
    windows: np.ndarray  # (W, 3) start, end, score_from


def build_split(labels: Labels, encoded: dict[str, np.ndarray], split: int, window: int) -> SplitArrays:
    """Arrays for `split`: inputs before the split's input end, labels of this split only."""
    events = labels.events
    input_end = labels.dates.input_end(split)
    keep = np.ones(len(events), dtype=bool)
    if input_end is not None:
        keep = naive_utc(events["ts"]) < np.datetime64(input_end.tz_localize(None), "us")
    rows = np.flatnonzero(keep)
    new_row = np.full(len(events), -1, dtype=np.int64)
    new_row[rows] = np.arange(len(rows))

    intent = np.where(labels.intent_split == split, labels.intent, IGNORE)[rows]
    has_next = (labels.next_split == split) & (labels.next_index >= 0)
    nxt = np.clip(labels.next_index, 0, None)

    def next_of(name: str) -> np.ndarray:
        return np.where(has_next, encoded[name][nxt], IGNORE)[rows]

    churn = labels.churn[labels.churn["split"] == split]
    churn = churn[new_row[churn["row"].to_numpy()] >= 0]
    order = np.argsort(new_row[churn["row"].to_numpy()], kind="stable")
    churn = churn.iloc[order]

    users = events["user_id"].to_numpy()[rows]
    return SplitArrays(
        features={name: encoded[name][rows] for name in FEATURES},
        intent=intent.astype(np.int64),
        next_product=next_of("product"),
        next_category=next_of("category"),
        next_brand=next_of("brand"),
        churn_row=new_row[churn["row"].to_numpy()],
        churn_gap=churn_gap_feature(churn["gap_s"].to_numpy(dtype=np.float64)),
        churn_label=churn["label"].to_numpy(dtype=np.float32),
        churn_key=churn.index.to_numpy(),
        event_row=rows,
        windows=cut_windows(users, window),
    )


def cut_windows(users: np.ndarray, window: int) -> np.ndarray:
    """(W, 3) [start, end, score_from) per window over contiguous user blocks."""
    stride = max(window // 2, 1)
    boundaries = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True]) if len(users) else np.array([0])
    out = []
    for begin, stop in zip(boundaries[:-1], boundaries[1:]):
        out.append((begin, min(begin + window, stop), begin))
        start = begin + stride
        while start + window - stride < stop:
            out.append((start, min(start + window, stop), start + window - stride))
            start += stride
    return np.asarray(out, dtype=np.int64).reshape(-1, 3)


class WindowDataset(Dataset):
    """Windows of one split; windows with no label of this split are skipped."""

    def __init__(self, arrays: SplitArrays, window: int, skip_unlabelled: bool = True):
        self.a = arrays
        self.window = window
        labelled = (arrays.intent >= 0) | (arrays.next_product >= 2)
        labelled_rows = np.zeros(len(labelled) + 1, dtype=np.int64)
        labelled_rows[1:] = np.cumsum(labelled)
        w = arrays.windows
        has_label = labelled_rows[w[:, 1]] - labelled_rows[w[:, 2]] > 0
        churn_lo = np.searchsorted(arrays.churn_row, w[:, 2])
        churn_hi = np.searchsorted(arrays.churn_row, w[:, 1])
        has_label |= churn_hi > churn_lo
        keep = has_label if skip_unlabelled else np.ones(len(w), dtype=bool)
        self.windows = w[keep]
        self.churn_span = np.stack([churn_lo, churn_hi], axis=1)[keep]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        start, end, score_from = self.windows[i]
        L = self.window
        n = end - start
        item: dict[str, torch.Tensor] = {}
        for name, values in self.a.features.items():
            item[name] = _pad(values[start:end], L, 0)
        scored = np.zeros(n, dtype=bool)
        scored[score_from - start:] = True
        for name in ("intent", "next_product", "next_category", "next_brand"):
            values = np.where(scored, getattr(self.a, name)[start:end], IGNORE)
            item[name] = _pad(values, L, IGNORE)
        item["event_row"] = _pad(np.where(scored, self.a.event_row[start:end], IGNORE), L, IGNORE)
        lo, hi = self.churn_span[i]
        item["churn_pos"] = torch.from_numpy(self.a.churn_row[lo:hi] - start)
        item["churn_gap"] = torch.from_numpy(self.a.churn_gap[lo:hi])
        item["churn_label"] = torch.from_numpy(self.a.churn_label[lo:hi])
        item["churn_key"] = torch.from_numpy(self.a.churn_key[lo:hi].astype(np.int64))
        return item


def _pad(values: np.ndarray, length: int, fill: int) -> torch.Tensor:
    out = np.full(length, fill, dtype=np.int64)
    out[: len(values)] = values
    return torch.from_numpy(out)


CHURN_KEYS = ("churn_pos", "churn_gap", "churn_label", "churn_key")


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack fixed-length fields; flatten the variable number of churn examples with their batch index."""
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0] if k not in CHURN_KEYS}
    for k in CHURN_KEYS:
        batch[k] = torch.cat([it[k] for it in items])
    batch["churn_batch"] = torch.cat([torch.full((len(it["churn_pos"]),), b, dtype=torch.long)
                                      for b, it in enumerate(items)])
    return add_label_index(batch)


def add_label_index(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Flat (B * L) positions that carry an intent / a known next-product label, found here on the host.

    The training step selects rows with these indices instead of boolean masks: a boolean mask on the
    GPU makes the host wait for the device to learn how many rows it selects, every step.
    """
    batch["intent_index"] = torch.nonzero(batch["intent"].flatten() >= 0).squeeze(1)
    batch["next_index"] = torch.nonzero(batch["next_product"].flatten() >= N_RESERVED).squeeze(1)
    return batch
