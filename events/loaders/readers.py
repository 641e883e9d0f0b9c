"""Chunked readers of source files: bounded memory however large the file, original values untouched.

CSV columns are read as text (a bad value in row 9 million must become a rejected row, not a failed
load) and Parquet columns keep their types; both come in file order, one chunk at a time.
"""
from __future__ import annotations

import codecs
import csv
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from events.errors import UserFacingError
from events.loaders.csv_records import (
    MAX_ROW_BYTES,
    ROW_TOO_LARGE,
    Unreadable,
    split,
    too_large_text,
)

MALFORMED_ROW = "malformed_row"

_CSV_BLOCK_BYTES = 4 << 20
"""pyarrow parses a chunk's records in blocks of this size (a record may straddle two; records are at most
MAX_ROW_BYTES)."""
_MIN_CSV_ROW_BYTES = 40
"""A lower bound on the size of a CSV row: estimates from it err towards more rows, i.e. smaller partitions."""
_COMPRESSED_EXPANSION = 10
"""A compressed CSV (read transparently by pyarrow) holds several times its size in text; err high."""
_PARQUET_ROW_BYTES = 128
"""Rows per Parquet batch = chunk bytes / this, about the rows a CSV chunk of the same size holds."""


@dataclasses.dataclass(frozen=True)
class CsvLayout:
    delimiter: str = ","
    header: bool = True
    column_names: tuple[str, ...] | None = None
    """Names of the columns of a file without a header row."""
    encoding: str = "utf8"


@dataclasses.dataclass
class RawChunk:
    """Raw rows of one input in file order, with where each came from."""

    table: pa.Table
    source_rows: np.ndarray
    """0-based data-row number (header not counted) of each table row."""
    unreadable: list[Unreadable] = dataclasses.field(default_factory=list)
    """CSV rows that could not be split into fields, in row order: `malformed_row` (the wrong number of
    fields), `unterminated_quote` or `row_too_large` (see csv_records.py)."""


class CsvReader:
    """Reads `chunk_bytes` of text at a time, cuts it into records (csv_records.split) and parses them with
    pyarrow. Data rows are numbered as records (a quoted line break does not start one; blank lines are none),
    from 0 after the header."""

    def __init__(self, path: Path, layout: CsvLayout, chunk_bytes: int, max_row_bytes: int = MAX_ROW_BYTES) -> None:
        _check_file(path)
        if not layout.header and not layout.column_names:
            raise UserFacingError(f"{path}: a CSV file without a header needs its column names")
        self.path = path
        self.layout = layout
        self.chunk_bytes = chunk_bytes
        self.max_row_bytes = max_row_bytes
        self.columns: list[str] = list(layout.column_names) if layout.column_names else self._header()
        self.unreadable: dict[str, pa.DataType] = {}  # every CSV column is text
        expansion = _COMPRESSED_EXPANSION if path.suffix.lower() in (".gz", ".bz2", ".zst", ".lz4") else 1
        self.size_hint_rows = max(1, path.stat().st_size * expansion // _MIN_CSV_ROW_BYTES)

    def chunks(self) -> Iterator[RawChunk]:
        next_row, carry, skipping, first = 0, b"", False, True
        try:
            with self._text_stream() as stream:
                eof = False
                while not eof:
                    data, eof = self._read_after(carry, stream)
                    if first:
                        data, first = self._without_header(data, eof), False
                    if skipping:  # the rest of a too-large row
                        cut = data.find(b"\n")
                        if cut < 0 and not eof:
                            continue
                        del data[:cut + 1 if cut >= 0 else len(data)]
                        skipping = False
                    chunk, used, records = self._chunk(data, eof, next_row)
                    carry = bytes(data[used:])
                    if not eof and len(carry) > self.max_row_bytes:  # a line longer than the limit, still going
                        chunk.unreadable.append(Unreadable(next_row + records, ROW_TOO_LARGE, too_large_text(carry)))
                        records, carry, skipping = records + 1, b"", True
                    next_row += records
                    if chunk.table.num_rows or chunk.unreadable:
                        self._check_not_mostly_malformed(chunk, first=next_row == records)
                        yield chunk
        except (pa.ArrowInvalid, OSError) as err:
            raise UserFacingError(f"{self.path}: cannot read as CSV: {_first_line(err)}") from None

    def _read_after(self, carry: bytes, stream: pa.NativeFile) -> tuple[bytearray, bool]:
        """`carry` followed by the next chunk_bytes of the file, read in place (no copy of the chunk), and
        whether the file ended."""
        data = bytearray(len(carry) + self.chunk_bytes)
        data[:len(carry)] = carry
        read = stream.readinto(memoryview(data)[len(carry):])
        del data[len(carry) + read:]
        return data, read == 0

    def _chunk(self, data: bytes | bytearray, eof: bool, first_row: int) -> tuple[RawChunk, int, int]:
        """The chunk of the records in `data`, the bytes they took, and how many records (read and rejected)."""
        delimiter, fields = self.layout.delimiter, len(self.columns)
        block, used = split(data, eof, delimiter, fields, self.max_row_bytes)
        table, malformed = self._parse(block.text, first_row)
        if block.rows is not None and table.num_rows + len(malformed) != len(block.rows):
            # parity of quotes misled the split (a quote inside an unquoted value): split exactly
            block, used = split(data, eof, delimiter, fields, self.max_row_bytes, exact=True)
            table, malformed = self._parse(block.text, first_row)
            if table.num_rows + len(malformed) != len(block.rows):
                raise UserFacingError(f"{self.path}: from data row {first_row}: cannot tell where rows end "
                                      "(quotes the CSV reader reads differently); check the quoting there")
        rows = np.arange(table.num_rows + len(malformed)) if block.rows is None else block.rows
        records = len(rows) if block.rows is None else block.records
        positions = [position for position, _ in malformed]
        unreadable = [Unreadable(first_row + int(rows[position]), MALFORMED_ROW, text) for position, text in malformed]
        unreadable += [Unreadable(first_row + item.row, item.reason, item.text) for item in block.unreadable]
        unreadable.sort(key=lambda item: item.row)
        return RawChunk(table, first_row + np.delete(rows, positions), unreadable), used, records

    def _parse(self, text: bytes | memoryview, first_row: int) -> tuple[pa.Table, list[tuple[int, str]]]:
        """pyarrow's parse of whole records: the table and (position among the records, text) of the rows
        with the wrong number of fields."""
        if not len(text):
            return pa.table({name: pa.array([], pa.string()) for name in self.columns}), []
        malformed: list[tuple[int, str]] = []

        def skip_malformed(row: pacsv.InvalidRow) -> str:
            malformed.append((row.number - 1, row.text))  # numbered from 1; known only without threads
            return "skip"

        read_options = pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES, column_names=self.columns, use_threads=False)
        parse_options = pacsv.ParseOptions(
            delimiter=self.layout.delimiter,
            newlines_in_values=True,  # a quoted product description may hold a line break
            invalid_row_handler=skip_malformed,
        )
        # all text, and "" stays "": the parsers decide what is missing, and rejected rows keep their originals
        convert_options = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in self.columns}, strings_can_be_null=False
        )
        try:
            table = pacsv.read_csv(pa.BufferReader(pa.py_buffer(text)), read_options, parse_options, convert_options)
        except pa.ArrowInvalid as err:
            raise UserFacingError(f"{self.path}: {_where_unreadable(bytes(text), first_row)}: "
                                  f"{_first_line(err)}") from None
        return table.combine_chunks(), malformed

    def _text_stream(self) -> pa.NativeFile:
        """The file as UTF-8 text: decompressed (.gz, .bz2, ...) and transcoded from the layout's encoding."""
        stream = pa.input_stream(str(self.path), compression="detect")
        if codecs.lookup(self.layout.encoding).name != "utf-8":
            stream = pa.transcoding_input_stream(stream, self.layout.encoding, "utf8")
        return stream

    def _without_header(self, data: bytearray, eof: bool) -> bytearray:
        """The first text read, without its byte-order mark and header line."""
        if data.startswith(b"\xef\xbb\xbf"):
            del data[:3]
        if not self.layout.header:
            return data
        cut = data.find(b"\n")
        if cut < 0 and not eof:
            raise UserFacingError(f"{self.path}: the header line is longer than {self.chunk_bytes:,} bytes")
        del data[:cut + 1 if cut >= 0 else len(data)]
        return data

    def _check_not_mostly_malformed(self, chunk: RawChunk, first: bool) -> None:
        # a wrong delimiter or column list would otherwise "reject" a whole file, row by row
        malformed = [item for item in chunk.unreadable if item.reason == MALFORMED_ROW]
        if first and len(malformed) > chunk.table.num_rows:
            raise UserFacingError(
                f"{self.path}: most rows do not have the {len(self.columns)} fields {', '.join(self.columns)} "
                f"(data row {malformed[0].row}: {malformed[0].text!r}); is it the right format and delimiter?"
            )

    def _header(self) -> list[str]:
        line = first_line(self.path, self.layout.encoding)
        if not line:
            raise UserFacingError(f"{self.path}: the file is empty (expected a header row)")
        return next(csv.reader([line], delimiter=self.layout.delimiter))


def _where_unreadable(text: bytes, first_row: int) -> str:
    """Where in a block of records the first byte that is not UTF-8 lies, for the error message."""
    try:
        text.decode("utf8")
    except UnicodeDecodeError as err:
        line = text.count(b"\n", 0, err.start)
        return f"data row {first_row + line} or soon after (byte {err.start} of the rows read from data row {first_row})"
    return f"the rows from data row {first_row}"


class ParquetReader:
    def __init__(self, path: Path, chunk_bytes: int) -> None:
        _check_file(path)
        self.path = path
        self.batch_rows = max(1024, chunk_bytes // _PARQUET_ROW_BYTES)
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise UserFacingError(f"{path}: cannot read as Parquet: {_first_line(err)}") from None
        schema = self._file.schema_arrow
        self.unreadable: dict[str, pa.DataType] = {f.name: f.type for f in schema if not has_text_form(f.type)}
        """Columns of nested types (list, struct, map, ...): an error when a format needs one, otherwise not read
        (rejected.parquet keeps every other source column)."""
        self.columns: list[str] = [name for name in schema.names if name not in self.unreadable]
        self.size_hint_rows = self._file.metadata.num_rows

    def chunks(self) -> Iterator[RawChunk]:
        next_row = 0
        try:
            for batch in self._file.iter_batches(batch_size=self.batch_rows, columns=self.columns):
                rows = np.arange(next_row, next_row + batch.num_rows, dtype=np.int64)
                next_row += batch.num_rows
                yield RawChunk(pa.Table.from_batches([batch]), rows)
        except (pa.ArrowInvalid, OSError) as err:
            raise UserFacingError(f"{self.path}: cannot read as Parquet: {_first_line(err)}") from None


def has_text_form(kind: pa.DataType) -> bool:
    """Whether a column of this type reads as one text per row (scalars do; lists, structs and maps do not)."""
    try:
        pc.cast(pa.array([], kind), pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return False
    return True


def first_line(path: Path, encoding: str = "utf8") -> str:
    """The first line of a text file ("" when empty), for headers and layout sniffing."""
    _check_file(path)
    # pyarrow's input stream decompresses .gz/.bz2 the same way open_csv does
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            head = stream.read(1 << 20)
    except (pa.ArrowInvalid, OSError) as err:
        raise UserFacingError(f"{path}: cannot read: {_first_line(err)}") from None
    lines = head.decode(encoding, errors="replace").lstrip("\ufeff").splitlines()
    return lines[0] if lines else ""


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise UserFacingError(f"{path}: no such file")


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
