"""UCI Online Retail (#352, Chen, Sain & Guo 2012): one purchase event per invoice line.

The invoice is the session and the customer the user; `price` is `UnitPrice`. Lines that are no purchase of
a product by a known customer are rejected and counted, with the first of these reasons that applies:

- `missing_customer`: no CustomerID (about a quarter of the lines, as the documentation says);
- `cancellation`: the invoice number starts with `C`, which the documentation defines as a cancellation;
- `bad_quantity`: a quantity that is missing or not positive on an invoice that is not a cancellation (in
  the 2010-2011 file: 1,336 stock write-offs, "damaged", "?", all without a customer);
- `non_product`: a stock code other than a product's five digits (plus letters for a variant, 85123A):
  postage (POST, DOT, C2), manual lines (M), discounts (D), samples (S), fees and charges (BANK CHARGES,
  AMAZONFEE, CRUK), bad debt (B), PADS, gift vouchers (gift_0001_*), the dotcom shop's DCGS* lines;
- `duplicate`: a line equal in every column to an earlier line (of any input of the load).

Reads the Parquet file or a CSV export of the spreadsheet (ISO times, or the sheet's `12/1/2010 8:26`).
The column names of Online Retail II (`Invoice`, `Price`, `Customer ID`) are accepted too. Invoice times
are the shop's UK wall-clock time (Europe/London).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from events.errors import UserFacingError
from events.loaders.duplicates import DuplicateRows
from events.loaders.formats.base import Source, SourceInput, require_columns
from events.loaders.options import LoadOptions
from events.loaders.parsed_chunk import Column, ParsedChunk
from events.loaders.parsing import (
    constant,
    number,
    reading,
    text,
    timestamp,
    timestamp_from_text,
)
from events.loaders.readers import CsvLayout, CsvReader, ParquetReader

PRODUCT_CODE = r"^\d{5}[A-Za-z]*$"
"""Stock codes of products; every other code is a charge, fee, voucher or manual line (see the module text)."""
SHOP_TIMEZONE = "Europe/London"
SPREADSHEET_TIME_FORMAT = "%m/%d/%Y %H:%M"
COLUMN_ALIASES = {  # role -> accepted names, Online Retail first, then Online Retail II
    "invoice": ("InvoiceNo", "Invoice"),
    "product": ("StockCode",),
    "quantity": ("Quantity",),
    "time": ("InvoiceDate",),
    "price": ("UnitPrice", "Price"),
    "customer": ("CustomerID", "Customer ID"),
}


def open_source(format_name: str, paths: list[Path], options: LoadOptions) -> Source:
    inputs = []
    duplicates = DuplicateRows()  # one for the whole load: a line repeated in a second input is a duplicate too
    for path in paths:
        reader = _reader(path, options.chunk_bytes)
        names = {role: next((n for n in aliases if n in reader.columns), aliases[0])
                 for role, aliases in COLUMN_ALIASES.items()}
        require_columns(reader, {name: role for role, name in names.items()}, "the online-retail format")
        inputs.append(SourceInput(path, reader, _extractor(names, duplicates)))
    return Source(format_name=format_name, inputs=inputs, has_session_ids=True)


def _reader(path: Path, chunk_bytes: int) -> CsvReader | ParquetReader:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return ParquetReader(path, chunk_bytes)
    if suffix in (".xlsx", ".xls"):
        raise UserFacingError(f"{path}: export the spreadsheet as CSV (or Parquet) first; Excel files are not read")
    return CsvReader(path, CsvLayout(), chunk_bytes)


def _extractor(names: dict[str, str], duplicates: DuplicateRows) -> Callable[[pa.Table], ParsedChunk]:
    def extract(raw: pa.Table) -> ParsedChunk:
        with reading(names["invoice"]):
            invoice = text(raw.column(names["invoice"]))
        with reading(names["customer"]):
            # a customer id read from CSV may carry the float formatting of its export (17850.0)
            customer = pc.replace_substring_regex(text(raw.column(names["customer"])), r"\.0+$", "")
        with reading(names["quantity"]):
            quantity, _ = number(raw.column(names["quantity"]))
        with reading(names["product"]):
            product = text(raw.column(names["product"]))
        failed = {  # in order of precedence: the first that applies is the reason
            "missing_customer": pc.is_null(customer),
            "cancellation": pc.fill_null(pc.starts_with(invoice, "C", ignore_case=True), False),
            "bad_quantity": pc.invert(pc.fill_null(pc.greater(quantity, 0.0), False)),
            "non_product": pc.invert(pc.fill_null(pc.match_substring_regex(product, PRODUCT_CODE), True)),
            "duplicate": duplicates.mark(raw),
        }
        reason = pa.nulls(raw.num_rows, pa.string())
        for name, rows in reversed(failed.items()):
            reason = pc.if_else(rows, pa.scalar(name), reason)
        with reading(names["price"]):
            price, price_unparseable = number(raw.column(names["price"]))
        with reading(names["time"]):
            ts = _invoice_time(raw.column(names["time"]))
        return ParsedChunk(
            user_id=customer,
            session_id=invoice,
            ts=ts,
            event_type=constant("purchase", raw.num_rows),
            product_id=product,
            category=constant(None, raw.num_rows),
            brand=constant(None, raw.num_rows),
            price=price,
            price_unparseable=price_unparseable,
            source_reason=reason,
        )

    return extract


def _invoice_time(column: Column) -> Column:
    if not pa.types.is_string(column.type):
        return timestamp(column, None, None, SHOP_TIMEZONE)
    iso = timestamp_from_text(column, None, SHOP_TIMEZONE)
    return pc.coalesce(iso, timestamp_from_text(column, SPREADSHEET_TIME_FORMAT, SHOP_TIMEZONE))
