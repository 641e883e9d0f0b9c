"""The canonical event table every loader and the simulator write (see ../shared/DESIGN.md)."""
from __future__ import annotations

import pyarrow as pa

EVENT_TYPES = ("view", "cart", "remove_from_cart", "purchase")
"""Core event types; sources may add others (e.g. `wishlist`) by configuration."""

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
