"""The canonical event table every loader and the simulator write, and the constants that go with it
(the rules are in docs/DESIGN.md)."""
from __future__ import annotations

import pyarrow as pa

EVENT_TYPES = ("view", "cart", "remove_from_cart", "purchase")
"""Core event types, in this order everywhere (the simulator's codes, the encoder's first ids); sources may
add others (e.g. `wishlist`) by configuration."""

SESSION_GAP_MINUTES = 30.0
"""Inactivity that ends a session where a source has no session ids (loaders and serving cut alike)."""

PAD = 0  # padding position: embeds to zero, never predicted
UNK = 1  # unseen or rare token: how serving handles products the model never saw
N_RESERVED = 2  # ids below this are PAD and UNK; real tokens start here

CANONICAL_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("category", pa.string()),
        pa.field("brand", pa.string()),
        pa.field("price", pa.float64()),
    ]
)
CANONICAL_COLUMNS = tuple(CANONICAL_SCHEMA.names)

EVENTS_FILE = "events.parquet"
REJECTED_FILE = "rejected.parquet"
