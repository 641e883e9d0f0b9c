"""Vectorised parsers from source columns (text or typed) to canonical values; bad values become null.

Nothing here loops over rows in Python: pyarrow compute does the work; pandas parses only the text
timestamps that pyarrow's strptime cannot (ISO 8601 variants, %z, %f).
"""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from events.errors import UserFacingError
from events.loaders.parsed_chunk import Column

UTC_US = pa.timestamp("us", tz="UTC")
_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_MICROS_PER_UNIT = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}
_DIRECTIVES_ONLY_PANDAS_KNOWS = ("%z", "%Z", "%f")
_MAX_ABS_MICROS = 2.0**62  # beyond this a value is garbage, not a time (int64 microseconds overflow near 2**63)


def text(column: Column) -> Column:
    """As strings with surrounding blanks removed; empty strings and NaN become null.

    Integral floats print without `.0` (pyarrow's cast), so an id stored as a float (17850.0) reads `17850`.
    """
    if pa.types.is_floating(column.type):
        column = pc.if_else(pc.is_nan(column), None, column)
    if not pa.types.is_string(column.type):  # numbers, dictionaries, large_string (polars writes it)
        column = pc.cast(column, pa.string())
    trimmed = pc.utf8_trim_whitespace(column)
    return pc.if_else(pc.equal(trimmed, ""), None, trimmed)


def number(column: Column) -> tuple[Column, Column]:
    """(float64 values, unparseable): values are null where missing or not a finite number.

    `unparseable` is true where a value was given but is not a finite number (text like `abc`, `inf`, `1,5`).
    NaN in a typed float column counts as missing: that is how pandas writes a missing number.
    """
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_decimal(column.type):
        values = pc.cast(column, pa.float64())
        values = pc.if_else(pc.is_nan(values), None, values)
        finite = pc.is_finite(values)
        return pc.if_else(finite, values, None), pc.fill_null(pc.invert(finite), False)
    given = text(column)
    looks_numeric = pc.fill_null(pc.match_substring_regex(given, _NUMBER), False)
    values = pc.cast(pc.if_else(looks_numeric, given, None), pa.float64())
    finite = pc.fill_null(pc.is_finite(values), False)
    unparseable = pc.and_(pc.is_valid(given), pc.invert(finite))
    return pc.if_else(finite, values, None), unparseable


def timestamp_from_epoch(column: Column, unit: str) -> Column:
    """Seconds/milliseconds/... since 1970-01-01 UTC (integers or decimals) as timestamp[us, UTC]."""
    values, _ = number(column)
    micros = pc.multiply(values, _MICROS_PER_UNIT[unit])
    in_range = pc.less(pc.abs(micros), _MAX_ABS_MICROS)
    micros = pc.if_else(in_range, pc.round(micros), None)
    return pc.cast(pc.cast(micros, pa.int64()), UTC_US)


def timestamp_from_text(column: Column, fmt: str | None, timezone: str) -> Column:
    """Text timestamps as timestamp[us, UTC]; `fmt` is a strptime format, None means ISO 8601.

    Values with an offset (`+02:00`, `Z`) are converted to UTC; values without one are read in `timezone`.
    """
    if fmt and not any(directive in fmt for directive in _DIRECTIVES_ONLY_PANDAS_KNOWS):
        # pyarrow's strptime is several times faster than pandas' (REES46's 5-9 GB months feel that)
        naive = pc.strptime(text(column), format=fmt, unit="us", error_is_null=True)
        return pc.cast(naive, UTC_US) if timezone == "UTC" else local_to_utc(naive, timezone)
    series = text(column).to_pandas()
    fmt = fmt or "ISO8601"
    has_offsets = f"timestamps carry UTC offsets, so timezone {timezone!r} does not apply; drop it"
    if timezone == "UTC":
        parsed = pd.to_datetime(series, format=fmt, errors="coerce", utc=True)
        return pc.cast(pa.array(parsed), UTC_US, safe=False)
    try:
        parsed = pd.to_datetime(series, format=fmt, errors="coerce")
    except ValueError:  # pandas refuses a column that mixes offsets unless asked for UTC
        raise UserFacingError(has_offsets) from None
    if isinstance(parsed.dtype, pd.DatetimeTZDtype) or parsed.dtype.kind != "M":
        raise UserFacingError(has_offsets)
    return local_to_utc(pa.array(parsed), timezone)


def local_to_utc(naive: Column, timezone: str) -> Column:
    """Naive wall-clock times in `timezone` as timestamp[us, UTC].

    At a daylight-saving change an ambiguous or skipped wall time takes the earlier instant, so no row is lost.
    """
    try:
        aware = pc.assume_timezone(naive, timezone, ambiguous="earliest", nonexistent="earliest")
    except pa.ArrowInvalid as err:
        raise UserFacingError(f"unknown timezone {timezone!r}: {err}") from None
    return pc.cast(aware, UTC_US, safe=False)


def timestamp(column: Column, fmt: str | None, unit: str | None, timezone: str) -> Column:
    """Any source timestamp column as timestamp[us, UTC]: typed timestamps, epoch numbers or text."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        return pc.cast(column, UTC_US, safe=False) if kind.tz else local_to_utc(column, timezone)
    if pa.types.is_date(kind):
        return local_to_utc(pc.cast(column, pa.timestamp("us")), timezone)
    if unit is not None:
        return timestamp_from_epoch(column, unit)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        raise UserFacingError(f"the timestamp column holds numbers ({kind}); say which epoch unit (s, ms, us, ns)")
    return timestamp_from_text(column, fmt, timezone)


def constant(value: str | None, length: int) -> pa.Array:
    """The same text in every row (null for None)."""
    return pa.repeat(pa.scalar(value, pa.string()), length)


def no_prices(length: int) -> tuple[pa.Array, pa.Array]:
    """(price, unparseable) for a source without prices."""
    return pa.nulls(length, pa.float64()), pa.repeat(pa.scalar(False), length)
