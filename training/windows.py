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

    def __init__(self, arrays: SplitArrays, window: int):
        self.a = arrays
        self.window = window
        labelled = (arrays.intent >= 0) | (arrays.next_product >= N_RESERVED)
        labelled_rows = np.zeros(len(labelled) + 1, dtype=np.int64)
        labelled_rows[1:] = np.cumsum(labelled)
        w = arrays.windows
        has_label = labelled_rows[w[:, 1]] - labelled_rows[w[:, 2]] > 0
        churn_lo = np.searchsorted(arrays.churn_row, w[:, 2])
        churn_hi = np.searchsorted(arrays.churn_row, w[:, 1])
        has_label |= churn_hi > churn_lo
        self.windows = w[has_label]
        self.churn_span = np.stack([churn_lo, churn_hi], axis=1)[has_label]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """One window: fixed fields (L,), churn examples (M,)."""
        return split_batch(self.__getitems__([i]))[0]

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """A whole batch gathered at once with array indexing (the DataLoader calls this instead of
        B `__getitem__`s): per-window Python would cap a data-loading worker at a few thousand windows/s."""
        w = self.windows[np.asarray(indices, dtype=np.int64)]  # (B, 3) start, end, score_from
        start, end, score_from = w[:, :1], w[:, 1:2], w[:, 2:3]
        pos = start + np.arange(self.window)  # (B, L) event rows, right-padded past `end`
        real = pos < end
        rows = np.where(real, pos, 0)
        scored = real & (pos >= score_from)
        batch = {name: torch.from_numpy(np.where(real, values[rows], 0)) for name, values in self.a.features.items()}
        for name in ("intent", "next_product", "next_category", "next_brand", "event_row"):
            batch[name] = torch.from_numpy(np.where(scored, getattr(self.a, name)[rows], IGNORE).astype(np.int64))
        lo, hi = self.churn_span[np.asarray(indices, dtype=np.int64)].T  # (B,) each
        counts = hi - lo
        owner = np.repeat(np.arange(len(w)), counts)  # (M,) window of each churn example
        j = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())  # (M,) rows in churn arrays
        batch["churn_pos"] = torch.from_numpy(self.a.churn_row[j] - w[owner, 0])
        batch["churn_gap"] = torch.from_numpy(self.a.churn_gap[j])
        batch["churn_label"] = torch.from_numpy(self.a.churn_label[j])
        batch["churn_key"] = torch.from_numpy(self.a.churn_key[j].astype(np.int64))
        batch["churn_batch"] = torch.from_numpy(owner)
        return add_label_index(batch)


CHURN_KEYS = ("churn_pos", "churn_gap", "churn_label", "churn_key")
ITEM_KEYS = (*FEATURES, "intent", "next_product", "next_category", "next_brand", "event_row", *CHURN_KEYS)


def collate(items: list[dict[str, torch.Tensor]] | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stack windows into a batch: churn examples flattened with their batch index, labelled rows indexed.

    A batch that `WindowDataset.__getitems__` already gathered passes through.
    """
    if isinstance(items, dict):
        return items
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0] if k not in CHURN_KEYS}
    for k in CHURN_KEYS:
        batch[k] = torch.cat([it[k] for it in items])
    batch["churn_batch"] = torch.cat([torch.full((len(it["churn_pos"]),), b, dtype=torch.long)
                                      for b, it in enumerate(items)])
    return add_label_index(batch)


def concat_batches(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One batch from gathered batches (e.g. the tail of one partition and the head of the next)."""
    if len(parts) == 1:
        return parts[0]
    batch = {k: torch.cat([p[k] for p in parts]) for k in ITEM_KEYS}
    offsets = np.cumsum([0] + [len(p["product"]) for p in parts[:-1]])
    batch["churn_batch"] = torch.cat([p["churn_batch"] + int(o) for p, o in zip(parts, offsets)])
    return add_label_index(batch)


def split_batch(batch: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """The windows of a batch, each as `WindowDataset[i]` gives it."""
    return [{k: v[batch["churn_batch"] == b] if k in CHURN_KEYS else v[b] for k, v in batch.items() if k in ITEM_KEYS}
            for b in range(len(batch["product"]))]


def add_label_index(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Flat (B * L) positions that carry an intent / a known next-product label, found here on the host.

    The training step selects rows with these indices instead of boolean masks: a boolean mask on the
    GPU makes the host wait for the device to learn how many rows it selects, every step.
    """
    batch["intent_index"] = torch.nonzero(batch["intent"].flatten() >= 0).squeeze(1)
    batch["next_index"] = torch.nonzero(batch["next_product"].flatten() >= N_RESERVED).squeeze(1)
    return batch
