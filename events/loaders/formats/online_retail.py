"""UCI Online Retail (#352, Chen, Sain & Guo 2012): one purchase event per invoice line.

The invoice is the session and the customer the user; `price` is `UnitPrice`. As the data's documentation
says, an invoice number starting with `C` is a cancellation (so is a negative quantity), and about a quarter
of the lines have no CustomerID; such lines are not purchases by a known customer, so they are rejected
with reasons `cancellation` and `missing_customer` (in that order of precedence) and counted, never dropped.

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
from events.loaders.parsed_chunk import ParsedChunk, Column
from events.loaders.formats.base import Source, SourceInput, require_columns
from events.loaders.options import LoadOptions
from events.loaders.parsing import constant, number, text, timestamp, timestamp_from_text
from events.loaders.readers import CsvLayout, CsvReader, ParquetReader

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
_NO_REASON = pa.scalar(None, pa.string())


def open_source(format_name: str, paths: list[Path], options: LoadOptions) -> Source:
    inputs = []
    for path in paths:
        reader = _reader(path, options.chunk_bytes)
        names = {role: next((n for n in aliases if n in reader.columns), aliases[0])
                 for role, aliases in COLUMN_ALIASES.items()}
        require_columns(reader, {name: role for role, name in names.items()}, "the online-retail format")
        inputs.append(SourceInput(path, reader, _extractor(names)))
    return Source(format_name=format_name, inputs=inputs, has_session_ids=True)


def _reader(path: Path, chunk_bytes: int) -> CsvReader | ParquetReader:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return ParquetReader(path, chunk_bytes)
    if suffix in (".xlsx", ".xls"):
        raise UserFacingError(f"{path}: export the spreadsheet as CSV (or Parquet) first; Excel files are not read")
    return CsvReader(path, CsvLayout(), chunk_bytes)


def _extractor(names: dict[str, str]) -> Callable[[pa.Table], ParsedChunk]:
    def extract(raw: pa.Table) -> ParsedChunk:
        invoice = text(raw.column(names["invoice"]))
        # a customer id read from CSV may carry the float formatting of its export (17850.0)
        customer = pc.replace_substring_regex(text(raw.column(names["customer"])), r"\.0+$", "")
        quantity, _ = number(raw.column(names["quantity"]))
        cancelled = pc.or_(
            pc.fill_null(pc.starts_with(invoice, "C", ignore_case=True), False),
            pc.fill_null(pc.less(quantity, 0.0), False),
        )
        reason = pc.if_else(pc.is_null(customer), pa.scalar("missing_customer"), _NO_REASON)
        reason = pc.if_else(cancelled, pa.scalar("cancellation"), reason)
        price, price_unparseable = number(raw.column(names["price"]))
        return ParsedChunk(
            user_id=customer,
            session_id=invoice,
            ts=_invoice_time(raw.column(names["time"])),
            event_type=constant("purchase", raw.num_rows),
            product_id=text(raw.column(names["product"])),
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
