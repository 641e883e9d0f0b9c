"""What a request's events say about a shopper, beyond the model: order, sessions, cart, purchases, prices.

Everything is computed in one pass over the time-sorted events; filters and segment rules read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from events.schema import SESSION_GAP_MINUTES
from serving.api_types import Event

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
SESSION_GAP_US = round(SESSION_GAP_MINUTES * 60e6)
"""Sessions without ids are cut exactly as the loaders cut them (a gap of this length starts a new one)."""


def epoch_us(moment: datetime) -> int:
    """Exact integer microseconds since the epoch (the canonical table's resolution)."""
    return (moment - EPOCH) // MICROSECOND


@dataclass
class LatestSession:
    views: int = 0
    carts: int = 0
    purchases: int = 0


@dataclass
class ShopperHistory:
    events: list[Event]  # time-sorted; ties keep request order (as a stable sort of the offline table)
    ts_us: np.ndarray  # (N,) int64 microseconds since the epoch
    starts_session: np.ndarray  # (N,) bool
    in_cart: set[str] = field(default_factory=set)
    purchased: set[str] = field(default_factory=set)
    last_price: dict[str, float] = field(default_factory=dict)
    latest_session: LatestSession = field(default_factory=LatestSession)

    @classmethod
    def from_events(cls, events: list[Event]) -> "ShopperHistory":
        events = sorted(events, key=lambda e: e.ts)
        ts_us = np.array([epoch_us(e.ts) for e in events], dtype=np.int64)
        starts = np.ones(len(events), dtype=bool)
        for i in range(1, len(events)):
            here, before = events[i].session_id, events[i - 1].session_id
            if here is not None and before is not None:
                starts[i] = here != before
            else:
                starts[i] = ts_us[i] - ts_us[i - 1] >= SESSION_GAP_US
        history = cls(events, ts_us, starts)
        history._replay()
        return history

    def _replay(self) -> None:
        """Cart contents, purchases and last prices after the last event; counts of the latest session."""
        for event, starts in zip(self.events, self.starts_session):
            if starts:
                self.latest_session = LatestSession()
            kind, product = event.event_type, event.product_id
            if kind == "view":
                self.latest_session.views += 1
            elif kind == "cart":
                self.in_cart.add(product)
                self.latest_session.carts += 1
            elif kind == "remove_from_cart":
                self.in_cart.discard(product)
            elif kind == "purchase":
                self.in_cart.discard(product)
                self.purchased.add(product)
                self.latest_session.purchases += 1
            if event.price is not None:
                self.last_price[product] = event.price

    @property
    def empty(self) -> bool:
        return not self.events

    def idle_seconds(self, as_of: datetime) -> float:
        """Time from the last event to `as_of` (negative if events lie after it)."""
        return (epoch_us(as_of) - int(self.ts_us[-1])) / 1e6
