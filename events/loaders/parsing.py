"""Vectorised parsers from source columns (text or typed) to canonical values; bad values become null.

Nothing here loops over rows in Python: pyarrow compute does the work; pandas parses only the text
timestamps that pyarrow's strptime cannot (ISO 8601 variants, %z, %f).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from events.errors import UserFacingError
from events.loaders.parsed_chunk import Column

UTC_US = pa.timestamp("us", tz="UTC")
_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_MICROS_PER_UNIT = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}
_DIRECTIVES_ONLY_PANDAS_KNOWS = ("%z", "%Z", "%f")
FAR_MICROS = 2**62
"""Times further than this from 1970 (about 146,000 years) are clamped to it: int64 microseconds overflow near
2**63, and a clamped time is still far outside the canonical bounds, where validation rejects it by name."""
_YEAR_BEYOND_9999 = r"^[-+]?\d{5,}-\d"
"""An ISO-like text time whose year has five digits or more: no parser reads it, but it is a time out of bounds."""


@contextlib.contextmanager
def reading(column: str) -> Iterator[None]:
    """Name `column` in any error raised while it is parsed (a type or value the parsers cannot take)."""
    try:
        yield
    except UserFacingError as err:
        raise UserFacingError(f"column {column!r}: {err}") from None
    except (pa.ArrowException, ValueError, TypeError, OverflowError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserFacingError(f"column {column!r}: {message}") from err


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
    return micros_to_timestamp(pc.multiply(values, _MICROS_PER_UNIT[unit]))


def micros_to_timestamp(micros: Column) -> Column:
    """float64 microseconds since 1970 as timestamp[us, UTC]; values beyond FAR_MICROS are clamped to it."""
    clamped = pc.max_element_wise(pc.min_element_wise(micros, float(FAR_MICROS), skip_nulls=False), float(-FAR_MICROS),
                                 skip_nulls=False)
    return pc.cast(pc.cast(pc.round(clamped), pa.int64()), UTC_US)


def timestamp_from_text(column: Column, fmt: str | None, timezone: str) -> Column:
    """Text timestamps as timestamp[us, UTC]; `fmt` is a strptime format, None means ISO 8601.

    Values with an offset (`+02:00`, `Z`) are converted to UTC; values without one are read in `timezone`.
    """
    if fmt and not any(directive in fmt for directive in _DIRECTIVES_ONLY_PANDAS_KNOWS):
        # pyarrow's strptime is several times faster than pandas' (REES46's 5-9 GB months feel that)
        naive = _far_years(column, pc.strptime(text(column), format=fmt, unit="us", error_is_null=True))
        return pc.cast(naive, UTC_US) if timezone == "UTC" else local_to_utc(naive, timezone)
    series = text(column).to_pandas()
    fmt = fmt or "ISO8601"
    has_offsets = f"timestamps carry UTC offsets, so timezone {timezone!r} does not apply; drop it"
    if timezone == "UTC":
        parsed = pd.to_datetime(series, format=fmt, errors="coerce", utc=True)
        return _far_years(column, pc.cast(pa.array(parsed), UTC_US, safe=False))
    try:
        parsed = pd.to_datetime(series, format=fmt, errors="coerce")
    except ValueError:  # pandas refuses a column that mixes offsets unless asked for UTC
        raise UserFacingError(has_offsets) from None
    if isinstance(parsed.dtype, pd.DatetimeTZDtype) or parsed.dtype.kind != "M":
        raise UserFacingError(has_offsets)
    return local_to_utc(_far_years(column, pc.cast(pa.array(parsed), pa.timestamp("us"), safe=False)), timezone)


def _far_years(source: Column, parsed: Column) -> Column:
    """`parsed`, with the unparsed values whose year has five digits or more set to the far future (or past)."""
    if not parsed.null_count:  # the usual chunk: every value parsed
        return parsed
    given = text(source)
    far = pc.and_(pc.is_null(parsed), pc.fill_null(pc.match_substring_regex(given, _YEAR_BEYOND_9999), False))
    if not pc.any(far).as_py():
        return parsed
    sign = pc.if_else(pc.fill_null(pc.starts_with(given, "-"), False), -FAR_MICROS, FAR_MICROS)
    return pc.if_else(far, pc.cast(sign, parsed.type), parsed)


def check_timezone(timezone: str, origin: str) -> None:
    """Stop before reading when pyarrow does not know `timezone`, naming where it was given."""
    try:
        local_to_utc(pa.array([0], pa.timestamp("us")), timezone)
    except UserFacingError:
        raise UserFacingError(f"{origin}: unknown timezone {timezone!r} (e.g. UTC, Europe/Berlin)") from None


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
        micros = _typed_micros(column)
        return micros if kind.tz else local_to_utc(micros, timezone)
    if pa.types.is_date(kind):
        return local_to_utc(_typed_micros(column), timezone)
    if unit is not None:
        return timestamp_from_epoch(column, unit)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        raise UserFacingError(f"the timestamp column holds numbers ({kind}); say which epoch unit (s, ms, us, ns)")
    return timestamp_from_text(column, fmt, timezone)


_MICROS_PER_TYPED_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1}


def _typed_micros(column: Column) -> Column:
    """A typed timestamp or date column as timestamp[us] (keeping its zone), far values clamped to FAR_MICROS.

    pyarrow's unsafe cast would wrap a timestamp[s] beyond int64 microseconds around to a plausible time.
    """
    kind = column.type
    if pa.types.is_date32(kind):
        column, per_unit = pc.cast(column, pa.int32()), 86_400_000_000
    elif pa.types.is_date64(kind):
        column, per_unit = pc.cast(column, pa.int64()), 1_000
    else:
        per_unit = _MICROS_PER_TYPED_UNIT[kind.unit]
    target = pa.timestamp("us", tz=getattr(kind, "tz", None))
    if per_unit == 1:  # us, or ns truncated to us: never out of int64
        return pc.cast(column, target, safe=False)
    limit = FAR_MICROS // per_unit
    units = pc.cast(column, pa.int64())
    clamped = pc.max_element_wise(pc.min_element_wise(units, limit, skip_nulls=False), -limit, skip_nulls=False)
    return pc.cast(pc.multiply(clamped, per_unit), target)


def constant(value: str | None, length: int) -> pa.Array:
    """The same text in every row (null for None)."""
    return pa.repeat(pa.scalar(value, pa.string()), length)


def no_prices(length: int) -> tuple[pa.Array, pa.Array]:
    """(price, unparseable) for a source without prices."""
    return pa.nulls(length, pa.float64()), pa.repeat(pa.scalar(False), length)
