"""The YAML column mapping that describes any shop's CSV/Parquet export (and the built-in formats).

Example (every key is optional except the four required fields):

    columns:              # canonical field -> source column (text fields may list fallbacks)
      user_id: customer_id
      session_id: visit_id          # leave out to cut sessions at 30 minutes of inactivity
      ts: happened_at
      event_type: action
      product_id: sku
      category: [category_path, category_id]   # first non-empty of these
      brand: brand
      price: unit_price
    constants:            # canonical field -> one value for every row
      brand: acme
    event_types:          # source value -> canonical type (view, cart, remove_from_cart, purchase, ...)
      click: view
      basket_add: cart
    keep_extra_types: false         # keep other source types as they are instead of rejecting them
    timestamp:
      format: "%d/%m/%Y %H:%M:%S"   # strptime; leave out for ISO 8601; or `unit: s|ms|us|ns` for epoch numbers
      timezone: Europe/Berlin       # for times without a UTC offset (default UTC)
    csv:
      delimiter: ";"
      header: true                  # false: give column_names
      encoding: utf8
    ts_min: 2024-01-01              # accepted range, [ts_min, ts_max)
    ts_max: 2025-01-01
"""
from __future__ import annotations

import codecs
import dataclasses
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml

from events.config_io import from_dict
from events.errors import UserFacingError
from events.loaders.parsing import check_timezone
from events.schema import CANONICAL_COLUMNS

REQUIRED_FIELDS = ("user_id", "ts", "event_type", "product_id")
SINGLE_COLUMN_FIELDS = ("ts", "price")
"""Fields parsed as typed values take exactly one column; text fields may list fallbacks."""


@dataclasses.dataclass
class ColumnMapping:
    user_id: str | list[str] | None = None
    session_id: str | list[str] | None = None
    ts: str | list[str] | None = None
    event_type: str | list[str] | None = None
    product_id: str | list[str] | None = None
    category: str | list[str] | None = None
    brand: str | list[str] | None = None
    price: str | list[str] | None = None

    def sources(self, field: str) -> list[str]:
        value = getattr(self, field)
        return [] if value is None else [value] if isinstance(value, str) else list(value)


@dataclasses.dataclass
class TimestampSpec:
    format: str | None = None
    """strptime format (with %z for offsets, %f for fractions); None = ISO 8601."""
    unit: Literal["s", "ms", "us", "ns"] | None = None
    """Epoch unit, for numeric timestamps."""
    timezone: str = "UTC"
    """Zone of wall-clock times that carry no UTC offset."""


@dataclasses.dataclass
class CsvSpec:
    delimiter: str = ","
    header: bool = True
    column_names: list[str] | None = None
    encoding: str = "utf8"


@dataclasses.dataclass
class SourceMapping:
    columns: ColumnMapping = dataclasses.field(default_factory=ColumnMapping)
    constants: dict[str, Any] = dataclasses.field(default_factory=dict)
    event_types: dict[str, Any] = dataclasses.field(default_factory=dict)
    keep_extra_types: bool = False
    timestamp: TimestampSpec = dataclasses.field(default_factory=TimestampSpec)
    csv: CsvSpec = dataclasses.field(default_factory=CsvSpec)
    ts_min: Any = None
    """ISO date or datetime (YAML may hand over a date object): start of the accepted range, inclusive."""
    ts_max: Any = None
    """End of the accepted range, exclusive."""

    def check(self, origin: str) -> None:
        """Stop on a mapping that cannot work, naming `origin` (the YAML file) and the field."""
        unknown = sorted(set(self.constants) - set(CANONICAL_COLUMNS))
        if unknown:
            raise UserFacingError(f"{origin}: constants for unknown field(s) {', '.join(unknown)}; "
                                  f"fields are: {', '.join(CANONICAL_COLUMNS)}")
        for field in CANONICAL_COLUMNS:
            mapped = self.columns.sources(field)
            if mapped and field in self.constants:
                raise UserFacingError(f"{origin}: {field} has both a column ({mapped}) and a constant; keep one")
            if field in SINGLE_COLUMN_FIELDS and len(mapped) > 1:
                raise UserFacingError(f"{origin}: {field} takes one column, got {mapped}")
        if "ts" in self.constants:
            raise UserFacingError(f"{origin}: ts must come from a column, not a constant")
        for field in REQUIRED_FIELDS:
            if not self.columns.sources(field) and field not in self.constants:
                raise UserFacingError(f"{origin}: columns.{field} is required (the source column holding it)")
        if not self.csv.header and not self.csv.column_names:
            raise UserFacingError(f"{origin}: csv.header is false, so csv.column_names must name the columns")
        for section, values in (("constants", self.constants), ("event_types", self.event_types)):
            for key, value in values.items():
                if isinstance(value, (dict, list)):
                    raise UserFacingError(f"{origin}: {section}.{key}: expected a single value, got {value!r}")
        for key in ("ts_min", "ts_max"):
            if not isinstance(getattr(self, key), (str, date, type(None))):
                raise UserFacingError(f"{origin}: {key}: expected an ISO 8601 date or datetime, "
                                      f"got {getattr(self, key)!r}")
        if len(self.csv.delimiter) != 1:
            raise UserFacingError(f"{origin}: csv.delimiter must be one character, got {self.csv.delimiter!r}")
        try:
            codecs.lookup(self.csv.encoding)
        except LookupError:
            raise UserFacingError(f"{origin}: csv.encoding: unknown encoding {self.csv.encoding!r}") from None
        check_timezone(self.timestamp.timezone, f"{origin}: timestamp.timezone")


def load_mapping(path: Path) -> SourceMapping:
    """Read and check a mapping file; every mistake is an error naming the file and the key (or line)."""
    origin = f"mapping {path}"
    if not path.is_file():
        raise UserFacingError(f"mapping file not found: {path}")
    try:
        raw = yaml.load(path.read_text(encoding="utf8"), Loader=_StrictLoader)  # a SafeLoader
    except UnicodeDecodeError as err:
        raise UserFacingError(f"{origin}: not UTF-8 text (byte {err.start})") from None
    except yaml.YAMLError as err:
        raise UserFacingError(f"{origin}: not valid YAML: {_yaml_problem(err)}") from None
    if not isinstance(raw, dict):
        raise UserFacingError(f"{origin}: the top level must be a mapping of keys (columns, timestamp, ...) "
                              f"to values, got {type(raw).__name__}")
    try:
        mapping = from_dict(SourceMapping, raw)
    except UserFacingError as err:
        raise UserFacingError(f"{origin}: {err}") from None
    # YAML reads `1: view` with an integer key; source values are compared as text
    mapping.check(origin)
    mapping.event_types = {str(k): str(v) for k, v in mapping.event_types.items()}
    return mapping


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem
