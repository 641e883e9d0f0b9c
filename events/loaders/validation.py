"""Judge each candidate row: accept it into the canonical table or reject it with one reason.

A row failing several checks gets the first reason in REASONS, so that counts per reason add up to the
number of rejected rows.
"""
from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from events.loaders.parsed_chunk import Column, ParsedChunk
from events.loaders.parsing import UTC_US, text
from events.schema import EVENT_TYPES

TS_BOUNDS = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2262, 4, 11, tzinfo=UTC))
"""Times any load may accept, [start, end): no shop's events predate Unix time (a negative epoch is a broken
value), and pandas' nanosecond range ends on 2262-04-11, so downstream code may convert any accepted time."""

REASONS = (
    # `malformed_row` (a CSV row with the wrong number of fields) is decided by the reader, and a format's
    # own reasons (e.g. online-retail's `cancellation`) come before the checks here, which go in this order:
    "missing_user_id",
    "missing_session_id",
    "missing_product_id",
    "unknown_event_type",
    "bad_timestamp",  # missing or unparseable
    "timestamp_out_of_bounds",  # a time, but outside TS_BOUNDS (a negative epoch, a year past 9999, ...)
    "out_of_range",  # before ts_min or at/after ts_max
    "bad_price",  # given but not a finite number
    "negative_price",
)


@dataclasses.dataclass(frozen=True)
class Rules:
    event_types: dict[str, str]
    """Source event type -> canonical type."""
    keep_extra_types: bool
    """Keep unmapped, non-core source types as they are instead of rejecting them."""
    ts_min: datetime | None
    ts_max: datetime | None

    def canonical_event_type(self, source_type: str | None) -> str | None:
        if source_type is None:
            return None
        if source_type in self.event_types:
            return self.event_types[source_type]
        if source_type in EVENT_TYPES or self.keep_extra_types:
            return source_type
        return None


@dataclasses.dataclass
class Judgement:
    accepted: pa.Table
    """Canonical columns of the accepted rows (no session_id when the source has none)."""
    rejected: Column
    """Boolean mask over the chunk's rows."""
    reasons: Column
    """One reason per rejected row, in row order."""


def judge(candidate: ParsedChunk, rules: Rules) -> Judgement:
    event_type = map_event_types(candidate.event_type, rules)
    failed = {
        "missing_user_id": pc.is_null(candidate.user_id),
        "missing_product_id": pc.is_null(candidate.product_id),
        "unknown_event_type": pc.is_null(event_type),
        "bad_timestamp": pc.is_null(candidate.ts),
        "timestamp_out_of_bounds": _outside(candidate.ts, *TS_BOUNDS),
        "out_of_range": _outside(candidate.ts, rules.ts_min, rules.ts_max),
        "bad_price": candidate.price_unparseable,
        "negative_price": pc.fill_null(pc.less(candidate.price, 0.0), False),
    }
    if candidate.session_id is not None:
        failed["missing_session_id"] = pc.is_null(candidate.session_id)
    reason = pa.nulls(len(candidate.ts), pa.string())
    for name in reversed(REASONS):  # reversed, so that the earliest failing check is written last
        if name in failed:
            reason = pc.if_else(failed[name], name, reason)
    if candidate.source_reason is not None:
        reason = pc.coalesce(candidate.source_reason, reason)
    rejected = pc.is_valid(reason)

    columns = {"user_id": candidate.user_id}
    if candidate.session_id is not None:
        columns["session_id"] = candidate.session_id
    columns |= {
        "ts": candidate.ts,
        "event_type": event_type,
        "product_id": candidate.product_id,
        "category": candidate.category,
        "brand": candidate.brand,
        "price": candidate.price,
    }
    accepted = pa.table(columns).filter(pc.invert(rejected))
    return Judgement(accepted=accepted, rejected=rejected, reasons=pc.drop_null(reason))


def map_event_types(source_types: Column, rules: Rules) -> pa.Array:
    """Canonical event types; null where the source type is neither known, mapped nor kept.

    The Python loop runs over the distinct types of the chunk (a handful), not over rows.
    """
    values = text(source_types)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values)
    targets = pa.array([rules.canonical_event_type(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(targets, encoded.indices)


def _outside(ts: Column, ts_min: datetime | None, ts_max: datetime | None) -> Column:
    outside = pc.less(ts, pa.scalar(ts_min, UTC_US)) if ts_min else pa.repeat(pa.scalar(False), len(ts))
    if ts_max:
        outside = pc.or_(outside, pc.greater_equal(ts, pa.scalar(ts_max, UTC_US)))
    return pc.fill_null(outside, False)
