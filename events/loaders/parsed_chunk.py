"""A chunk's canonical fields, parsed from the source but not yet judged by validation."""
from __future__ import annotations

import dataclasses

import pyarrow as pa

Column = pa.Array | pa.ChunkedArray


@dataclasses.dataclass
class ParsedChunk:
    """Arrays aligned row by row with the raw chunk they came from; null marks a missing value."""

    user_id: Column
    session_id: Column | None
    """None when the source has no session ids: sessions are then cut by inactivity."""
    ts: Column
    """timestamp[us, UTC]; null where the source value is missing or could not be parsed."""
    event_type: Column
    """Source values, before the event-type mapping."""
    product_id: Column
    category: Column
    brand: Column
    price: Column
    """float64; null where absent or unparseable."""
    price_unparseable: Column
    """True where a price was given but is not a finite number."""
    source_reason: Column | None = None
    """A format's own rejection reason per row (e.g. `cancellation`); null where the format has none."""
