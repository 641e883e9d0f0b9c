"""YooChoose (RecSys Challenge 2015): click sessions, and purchases when a buys file is given too.

Each input's layout is recognised from its first line:
- session-rec's prepared clicks: tab-separated, header `SessionId ItemId Time` (Unix seconds);
- the original `yoochoose-clicks.dat`: `SessionID,Timestamp,ItemID,Category`, no header, ISO times;
- the original `yoochoose-buys.dat`: `SessionID,Timestamp,ItemID,Price,Quantity`, no header: purchases.
There are no user ids: the session is the user. Category `0` means "unknown" in the challenge data.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from events.errors import UserFacingError
from events.loaders.formats.base import Source, SourceInput, require_columns
from events.loaders.options import LoadOptions
from events.loaders.parsed_chunk import ParsedChunk
from events.loaders.parsing import (
    constant,
    no_prices,
    number,
    text,
    timestamp_from_epoch,
    timestamp_from_text,
)
from events.loaders.readers import CsvLayout, CsvReader, first_line

ORIGINAL_CLICKS = ("SessionID", "Timestamp", "ItemID", "Category")
ORIGINAL_BUYS = ("SessionID", "Timestamp", "ItemID", "Price", "Quantity")


def open_source(format_name: str, paths: list[Path], options: LoadOptions) -> Source:
    inputs = [_open_input(path, options.chunk_bytes) for path in paths]
    return Source(format_name=format_name, inputs=inputs, has_session_ids=True)


def _open_input(path: Path, chunk_bytes: int) -> SourceInput:
    line = first_line(path)
    if "\t" in line:
        reader = CsvReader(path, CsvLayout(delimiter="\t"), chunk_bytes)
        require_columns(reader, {"SessionId": "session_id", "ItemId": "product_id", "Time": "ts"},
                        "the yoochoose format (prepared clicks)")
        return SourceInput(path, reader, _prepared_clicks)
    layouts: dict[int, tuple[tuple[str, ...], Callable[[pa.Table], ParsedChunk]]] = {
        len(ORIGINAL_CLICKS): (ORIGINAL_CLICKS, _original_clicks),
        len(ORIGINAL_BUYS): (ORIGINAL_BUYS, _original_buys),
    }
    fields = len(line.split(","))
    if fields not in layouts:
        raise UserFacingError(
            f"{path}: not a YooChoose file: expected a tab-separated `SessionId ItemId Time` header, or "
            f"{len(ORIGINAL_CLICKS)} (clicks) or {len(ORIGINAL_BUYS)} (buys) comma-separated fields; "
            f"the first line has {fields}"
        )
    names, extract = layouts[fields]
    return SourceInput(path, CsvReader(path, CsvLayout(header=False, column_names=names), chunk_bytes), extract)


def _prepared_clicks(raw: pa.Table) -> ParsedChunk:
    session = text(raw.column("SessionId"))
    price, price_unparseable = no_prices(raw.num_rows)
    return ParsedChunk(
        user_id=session,
        session_id=session,
        ts=timestamp_from_epoch(raw.column("Time"), "s"),
        event_type=constant("view", raw.num_rows),
        product_id=text(raw.column("ItemId")),
        category=constant(None, raw.num_rows),
        brand=constant(None, raw.num_rows),
        price=price,
        price_unparseable=price_unparseable,
    )


def _original_clicks(raw: pa.Table) -> ParsedChunk:
    session = text(raw.column("SessionID"))
    category = text(raw.column("Category"))
    price, price_unparseable = no_prices(raw.num_rows)
    return ParsedChunk(
        user_id=session,
        session_id=session,
        ts=timestamp_from_text(raw.column("Timestamp"), None, "UTC"),
        event_type=constant("view", raw.num_rows),
        product_id=text(raw.column("ItemID")),
        category=pc.if_else(pc.equal(category, "0"), None, category),
        brand=constant(None, raw.num_rows),
        price=price,
        price_unparseable=price_unparseable,
    )


def _original_buys(raw: pa.Table) -> ParsedChunk:
    session = text(raw.column("SessionID"))
    price, price_unparseable = number(raw.column("Price"))
    return ParsedChunk(
        user_id=session,
        session_id=session,
        ts=timestamp_from_text(raw.column("Timestamp"), None, "UTC"),
        event_type=constant("purchase", raw.num_rows),
        product_id=text(raw.column("ItemID")),
        category=constant(None, raw.num_rows),
        brand=constant(None, raw.num_rows),
        price=price,
        price_unparseable=price_unparseable,
    )
