"""`csv` and `parquet`: any shop's export described by a YAML column mapping (see events/loaders/mapping.py).

The built-in REES46 and Taobao formats are such mappings too, so they share this code.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from events.errors import UserFacingError
from events.loaders.formats.base import Source, SourceInput, require_columns
from events.loaders.mapping import SourceMapping, load_mapping
from events.loaders.options import LoadOptions, parse_instant
from events.loaders.parsed_chunk import Column, ParsedChunk
from events.loaders.parsing import constant, no_prices, number, reading, text, timestamp
from events.loaders.readers import CsvLayout, CsvReader, ParquetReader
from events.schema import CANONICAL_COLUMNS


def open_source(format_name: str, paths: list[Path], options: LoadOptions) -> Source:
    if options.mapping is None:
        raise UserFacingError(f"format {format_name} needs --mapping FILE.yaml (canonical field -> source column)")
    mapping = load_mapping(options.mapping)
    return open_mapped_source(format_name, paths, options, mapping, origin=f"mapping {options.mapping}",
                              file_kind=format_name)


def open_mapped_source(format_name: str, paths: list[Path], options: LoadOptions, mapping: SourceMapping,
                       origin: str, file_kind: str) -> Source:
    inputs = []
    for path in paths:
        reader = _reader(path, mapping, file_kind, options.chunk_bytes)
        needed = {column: field for field in CANONICAL_COLUMNS for column in mapping.columns.sources(field)}
        require_columns(reader, needed, origin)
        inputs.append(SourceInput(path=path, reader=reader, extract=_extractor(mapping)))
    return Source(
        format_name=format_name,
        inputs=inputs,
        has_session_ids=_has_session_ids(mapping),
        event_types=dict(mapping.event_types),
        keep_extra_types=mapping.keep_extra_types,
        ts_min=parse_instant(mapping.ts_min, f"{origin}: ts_min"),
        ts_max=parse_instant(mapping.ts_max, f"{origin}: ts_max"),
    )


def _reader(path: Path, mapping: SourceMapping, file_kind: str, chunk_bytes: int) -> CsvReader | ParquetReader:
    if file_kind == "parquet":
        return ParquetReader(path, chunk_bytes)
    spec = mapping.csv
    layout = CsvLayout(
        delimiter=spec.delimiter,
        header=spec.header,
        column_names=tuple(spec.column_names) if spec.column_names else None,
        encoding=spec.encoding,
    )
    return CsvReader(path, layout, chunk_bytes)


def _has_session_ids(mapping: SourceMapping) -> bool:
    return bool(mapping.columns.sources("session_id")) or "session_id" in mapping.constants


def _extractor(mapping: SourceMapping) -> Callable[[pa.Table], ParsedChunk]:
    columns, spec = mapping.columns, mapping.timestamp
    has_session_ids = _has_session_ids(mapping)

    def raw_or_constant(raw: pa.Table, field: str) -> list[tuple[str, Column]]:
        """(where from, column) of each source of `field`."""
        if field in mapping.constants:
            value = mapping.constants[field]
            return [(f"constants.{field}", constant(None if value is None else str(value), raw.num_rows))]
        return [(name, raw.column(name)) for name in columns.sources(field)]

    def text_field(raw: pa.Table, field: str) -> Column:
        sources = []
        for name, column in raw_or_constant(raw, field):
            with reading(name):
                sources.append(text(column))
        if not sources:
            return constant(None, raw.num_rows)
        return sources[0] if len(sources) == 1 else pc.coalesce(*sources)

    def extract(raw: pa.Table) -> ParsedChunk:
        price_sources = raw_or_constant(raw, "price")
        price, price_unparseable = no_prices(raw.num_rows)
        for name, column in price_sources:
            with reading(name):
                price, price_unparseable = number(column)
        ts_column = columns.sources("ts")[0]
        with reading(ts_column):
            ts = timestamp(raw.column(ts_column), spec.format, spec.unit, spec.timezone)
        return ParsedChunk(
            user_id=text_field(raw, "user_id"),
            session_id=text_field(raw, "session_id") if has_session_ids else None,
            ts=ts,
            event_type=text_field(raw, "event_type"),
            product_id=text_field(raw, "product_id"),
            category=text_field(raw, "category"),
            brand=text_field(raw, "brand"),
            price=price,
            price_unparseable=price_unparseable,
        )

    return extract
