"""Chunked readers of source files: bounded memory however large the file, original values untouched.

CSV columns are read as text (a bad value in row 9 million must become a rejected row, not a failed
load) and Parquet columns keep their types; both come in file order, one chunk at a time.
"""
from __future__ import annotations

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

_CSV_BLOCK_BYTES = 1 << 20
"""pyarrow's streaming CSV reader reads up to 32 blocks ahead in a background thread: small blocks keep
that readahead near 32 MiB (at 32 MiB blocks it held a whole 700 MB file); chunks are then assembled from
several blocks."""
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
    malformed: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    """(data-row number, text) of CSV rows with the wrong number of fields: rejected as `malformed_row`."""


class CsvReader:
    def __init__(self, path: Path, layout: CsvLayout, chunk_bytes: int) -> None:
        _check_file(path)
        if not layout.header and not layout.column_names:
            raise UserFacingError(f"{path}: a CSV file without a header needs its column names")
        self.path = path
        self.layout = layout
        self.chunk_bytes = chunk_bytes
        self.columns: list[str] = list(layout.column_names) if layout.column_names else self._header()
        self.unreadable: dict[str, pa.DataType] = {}  # every CSV column is text
        expansion = _COMPRESSED_EXPANSION if path.suffix.lower() in (".gz", ".bz2", ".zst", ".lz4") else 1
        self.size_hint_rows = max(1, path.stat().st_size * expansion // _MIN_CSV_ROW_BYTES)

    def chunks(self) -> Iterator[RawChunk]:
        malformed: dict[int, str] = {}
        header_rows = 1 if self.layout.header else 0

        def skip_malformed(row: pacsv.InvalidRow) -> str:
            # pyarrow numbers rows (records, not lines) from 1, header included; known only without threads
            malformed[row.number - 1 - header_rows] = row.text
            return "skip"

        read_options = pacsv.ReadOptions(
            block_size=min(self.chunk_bytes, _CSV_BLOCK_BYTES),
            column_names=None if self.layout.header else self.columns,
            encoding=self.layout.encoding,
            use_threads=False,  # row numbers of malformed rows need it; on 2 cores it was faster, too
        )
        parse_options = pacsv.ParseOptions(
            delimiter=self.layout.delimiter,
            newlines_in_values=True,  # a quoted product description may hold a line break
            invalid_row_handler=skip_malformed,
        )
        # all text, and "" stays "": the parsers decide what is missing, and rejected rows keep their originals
        convert_options = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in self.columns}, strings_can_be_null=False
        )
        placer = _RowPlacer(malformed)
        try:
            with pacsv.open_csv(str(self.path), read_options, parse_options, convert_options) as reader:
                for batches in _grouped(reader, self.chunk_bytes):
                    chunk = placer.place(pa.Table.from_batches(batches, reader.schema).combine_chunks())
                    self._check_not_mostly_malformed(chunk, first=placer.chunks == 1)
                    yield chunk
        except (pa.ArrowInvalid, OSError) as err:
            raise UserFacingError(f"{self.path}: cannot read as CSV: {_first_line(err)}") from None
        if malformed:  # malformed rows after the last good one
            empty = pa.table({name: pa.array([], pa.string()) for name in self.columns})
            chunk = placer.place(empty, flush=True)
            self._check_not_mostly_malformed(chunk, first=placer.chunks == 1)
            yield chunk

    def _check_not_mostly_malformed(self, chunk: RawChunk, first: bool) -> None:
        # a wrong delimiter or column list would otherwise "reject" a whole file, row by row
        if first and len(chunk.malformed) > chunk.table.num_rows:
            row, text = chunk.malformed[0]
            raise UserFacingError(
                f"{self.path}: most rows do not have the {len(self.columns)} fields {', '.join(self.columns)} "
                f"(data row {row}: {text!r}); is it the right format and delimiter?"
            )

    def _header(self) -> list[str]:
        line = first_line(self.path, self.layout.encoding)
        if not line:
            raise UserFacingError(f"{self.path}: the file is empty (expected a header row)")
        return next(csv.reader([line], delimiter=self.layout.delimiter))


class _RowPlacer:
    """Gives each parsed row its data-row number, accounting for the malformed rows pyarrow skipped.

    The rows of a batch are the next rows of the file minus the skipped ones, so the loop runs over
    skipped rows only (rare), never over good rows.
    """

    def __init__(self, malformed: dict[int, str]) -> None:
        self.malformed = malformed
        self.next_row = 0
        self.chunks = 0

    def place(self, table: pa.Table, flush: bool = False) -> RawChunk:
        self.chunks += 1
        end = self.next_row + table.num_rows
        skipped = []
        for row in sorted(self.malformed):  # rows placed earlier were popped
            if row >= end and not flush:
                break
            skipped.append(row)
            end = max(end + 1, row + 1)  # a skipped row takes a place; at the flush, up to the last one
        rows = np.setdiff1d(np.arange(self.next_row, end, dtype=np.int64), skipped, assume_unique=True)
        self.next_row = end
        return RawChunk(table, rows, [(row, self.malformed.pop(row)) for row in skipped])


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


def _grouped(batches: Iterator[pa.RecordBatch], chunk_bytes: int) -> Iterator[list[pa.RecordBatch]]:
    """Consecutive batches holding about `chunk_bytes` together."""
    group: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        group.append(batch)
        size += batch.nbytes
        if size >= chunk_bytes:
            yield group
            group, size = [], 0
    if group:
        yield group


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
