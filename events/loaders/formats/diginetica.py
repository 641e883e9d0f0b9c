"""DIGINETICA (CIKM Cup 2016) item views: `session_id;user_id;item_id;timeframe;eventdate`.

`user_id` is `NA` for anonymous sessions; such a session is its own user, named `session-<id>` because the
dataset's user ids and session ids are both small integers and must not meet. The time of a view is
`eventdate` (midnight, taken as UTC: the data names no zone) plus `timeframe` milliseconds.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from events.loaders.formats.base import Source, SourceInput, require_columns
from events.loaders.options import LoadOptions
from events.loaders.parsed_chunk import Column, ParsedChunk
from events.loaders.parsing import (
    constant,
    micros_to_timestamp,
    no_prices,
    number,
    text,
    timestamp_from_text,
)
from events.loaders.readers import CsvLayout, CsvReader

COLUMNS = {"session_id": "session_id", "user_id": "user_id", "item_id": "product_id",
           "timeframe": "ts (milliseconds into the day)", "eventdate": "ts (the day)"}
ANONYMOUS = "NA"


def open_source(format_name: str, paths: list[Path], options: LoadOptions) -> Source:
    inputs = []
    for path in paths:
        reader = CsvReader(path, CsvLayout(delimiter=";"), options.chunk_bytes)
        require_columns(reader, COLUMNS, "the diginetica format")
        inputs.append(SourceInput(path, reader, _extract))
    return Source(format_name=format_name, inputs=inputs, has_session_ids=True)


def _extract(raw: pa.Table) -> ParsedChunk:
    session = text(raw.column("session_id"))
    user = text(raw.column("user_id"))
    anonymous = pc.fill_null(pc.equal(user, ANONYMOUS), True)
    price, price_unparseable = no_prices(raw.num_rows)
    return ParsedChunk(
        user_id=pc.if_else(anonymous, pc.binary_join_element_wise("session-", session, ""), user),
        session_id=session,
        ts=_view_time(raw.column("eventdate"), raw.column("timeframe")),
        event_type=constant("view", raw.num_rows),
        product_id=text(raw.column("item_id")),
        category=constant(None, raw.num_rows),
        brand=constant(None, raw.num_rows),
        price=price,
        price_unparseable=price_unparseable,
    )


def _view_time(eventdate: Column, timeframe: Column) -> Column:
    day = pc.cast(pc.cast(timestamp_from_text(eventdate, "%Y-%m-%d", "UTC"), pa.int64()), pa.float64(), safe=False)
    millis, _ = number(timeframe)
    millis = pc.if_else(pc.greater_equal(millis, 0.0), millis, None)  # a negative offset is a broken row
    # summed as float64 (exact for whole milliseconds up to year 2262) and clamped: a huge timeframe or a far
    # eventdate becomes a time out of bounds that validation names, never an int64 overflow
    return micros_to_timestamp(pc.add(day, pc.multiply(millis, 1000.0)))
