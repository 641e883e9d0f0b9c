"""Counts accumulated over blocks for simulation.json."""
from __future__ import annotations

from typing import Any

import numpy as np

from events.schema import EVENT_TYPES
from events.simulator.block import Block
from events.simulator.funnel import CART_EVENT, PURCHASE_EVENT


class Summary:
    """conversion_rate: share of sessions with a purchase; abandonment_rate: share of sessions with a
    cart event that have no purchase (cart abandonment)."""

    def __init__(self, n_products: int) -> None:
        self.users = self.sessions = self.intent_rows = self.next_rows = self.churn_rows = 0
        self.type_counts = np.zeros(len(EVENT_TYPES), dtype=np.int64)
        self.purchase_sessions = self.cart_sessions = self.cart_purchase_sessions = 0
        self.products_seen = np.zeros(n_products, dtype=bool)

    @property
    def events(self) -> int:
        return int(self.type_counts.sum())

    def add(self, block: Block) -> None:
        n_sessions = int(block.event_session.max()) + 1 if len(block.event_session) else 0
        purchased = np.zeros(n_sessions, dtype=bool)
        purchased[block.event_session[block.event_type == PURCHASE_EVENT]] = True
        carted = np.zeros(n_sessions, dtype=bool)
        carted[block.event_session[block.event_type == CART_EVENT]] = True
        self.users += block.n_users
        self.sessions += n_sessions
        self.type_counts += np.bincount(block.event_type, minlength=len(EVENT_TYPES))
        self.purchase_sessions += int(purchased.sum())
        self.cart_sessions += int(carted.sum())
        self.cart_purchase_sessions += int((carted & purchased).sum())
        self.products_seen[block.product] = True
        self.intent_rows += block.tables.intent.num_rows
        self.next_rows += block.tables.next.num_rows
        self.churn_rows += block.tables.churn.num_rows

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "users": self.users,
            "sessions": self.sessions,
            "products": len(self.products_seen),
            "products_seen": int(self.products_seen.sum()),
            "event_type_counts": {t: int(c) for t, c in zip(EVENT_TYPES, self.type_counts)},
            "events_per_session": self.events / max(self.sessions, 1),
            "conversion_rate": self.purchase_sessions / max(self.sessions, 1),
            "abandonment_rate": 1.0 - self.cart_purchase_sessions / max(self.cart_sessions, 1),
            "oracle_rows": {"intent": self.intent_rows, "next": self.next_rows, "churn": self.churn_rows},
        }
