"""A partition's customers as the timelines the endpoint's engine reads: only the events that can change
its answer, as light rows instead of pydantic objects.

The engine (serving/engine.py) reads of a customer's history: the latest `window` events (the model's input),
the latest session (its views, carts and purchases: segments, the browse-abandon products), the cart contents
and the purchased products (replayed from every cart, removal and purchase: segments, the exclude-purchased
filter), the last event's time and, for price filters only, the last price seen of each product. So a view
before both the window and the latest session changes nothing that `signals score` asks (it uses no price
filter) and is left out; everything else is kept, in the table's order. A customer's answer is then the one
/predict gives for all of their events (tests/test_score.py), at a fraction of the cost: most events of a long
history are views. The lists by purpose `trending` (the top brand of every event), `recently_viewed` (every
view) and `similar` (the latest view of a product the model knows) read older views too: with any of them
asked, every event is kept (`every_event`), as it is for a model that reads the shopper's whole history (`ArchitectureConfig.reads_whole_history`).
"""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import numpy as np
import pandas as pd


class EventRow(NamedTuple):
    """The fields of serving.api_types.Event that the engine reads, by the same names (a pydantic object
    costs about 10x more to make, and these rows come from a canonical table: valid already)."""
    ts: datetime
    event_type: str
    product_id: str
    category: str | None
    brand: str | None
    price: float | None
    session_id: str


class Timelines:
    """events: one partition sorted by user then time; bounds: (U + 1,) row offsets of its U users."""

    def __init__(self, events: pd.DataFrame, bounds: np.ndarray, window: int, every_event: bool = False):
        self.events, self.bounds = events, bounds
        self.n_events = np.diff(bounds)  # (U,) every event of each customer, kept or not
        self.keep = np.ones(len(events), dtype=bool) if every_event else needed_rows(events, bounds, window)  # (N,)

    def rows(self, users: np.ndarray) -> list[list[EventRow]]:
        """The kept events of the given users (indices into bounds), made one batch at a time."""
        if not len(users):
            return []
        ranges = [np.arange(self.bounds[u], self.bounds[u + 1]) for u in users]
        kept = [r[self.keep[r]] for r in ranges]
        made = event_rows(self.events.iloc[np.concatenate(kept)])
        ends = np.cumsum([len(k) for k in kept])
        return [made[end - len(k):end] for k, end in zip(kept, ends)]


def needed_rows(events: pd.DataFrame, bounds: np.ndarray, window: int) -> np.ndarray:
    """(N,) True for the events the engine's answer depends on (module docstring)."""
    n = len(events)
    index = np.arange(n)
    first_of_user = np.zeros(n, dtype=bool)
    first_of_user[bounds[:-1]] = True
    session = events["session_id"].to_numpy()
    # A session starts where the session id changes, as serving.history cuts a time-sorted history.
    starts = first_of_user.copy()
    starts[1:] |= session[1:] != session[:-1]
    last_start = np.maximum.accumulate(np.where(starts, index, 0))  # (N,) the start of each event's session
    ends = bounds[1:]  # (U,)
    cutoff = np.minimum(np.maximum(ends - window, bounds[:-1]), last_start[ends - 1])  # (U,) first row kept whole
    user_of_row = np.repeat(np.arange(len(ends)), np.diff(bounds))
    return (events["event_type"].to_numpy() != "view") | (index >= cutoff[user_of_row])


def event_rows(events: pd.DataFrame) -> list[EventRow]:
    def nullable(column: str) -> list:
        values = events[column]
        return values.astype(object).where(values.notna(), None).tolist()

    return list(map(EventRow, events["ts"].dt.to_pydatetime().tolist(), events["event_type"].tolist(),
                    events["product_id"].tolist(), nullable("category"), nullable("brand"), nullable("price"),
                    events["session_id"].tolist()))
