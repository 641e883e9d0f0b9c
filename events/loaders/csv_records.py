"""Cut CSV text into records before pyarrow parses it, so that one bad row stays one rejected row.

pyarrow's parser, told that quoted values may hold line breaks, reads an unterminated quote to the end of the
file (every later row folds into one value), and fails the whole load on a row longer than its block. Here:

- a record may span lines only when its quote closes within MAX_ROW_BYTES, the record has the file's number
  of fields, and its first and last lines are not each a whole row when the quotes are read as plain
  characters (what a stray quote joining two rows looks like); otherwise the line that opened the quote is
  rejected alone (`unterminated_quote`) and the next line starts the next record;
- a line longer than MAX_ROW_BYTES is rejected (`row_too_large`); the reader never holds one whole.

Most text has neither a quote nor a long line: it goes to pyarrow untouched, after two memchr-speed scans.
Otherwise lines are found with numpy, and only the lines with an odd number of quotes (they open or close a
multi-line record) are looked at in Python, with the standard library's csv reader, which splits records the
way pyarrow does. Where the two still disagree on a block (a quote inside an unquoted value can open a record
on a line with an even count), the reader asks for the exact split: every line holding a quote is looked at.
"""
from __future__ import annotations

import csv
import dataclasses

import numpy as np

MAX_ROW_BYTES = 64 * 1024
"""The longest row (all its lines, for a quoted value with line breaks) a CSV load accepts. Event rows are a
few hundred bytes; the bound keeps a stray quote from joining more than this much text into one row."""
UNTERMINATED_QUOTE = "unterminated_quote"
ROW_TOO_LARGE = "row_too_large"
KEPT_CHARS = 1024
"""Of a too-large row, the characters kept in rejected.parquet (followed by its size)."""
_NEWLINE, _QUOTE, _RETURN = ord("\n"), ord('"'), ord("\r")


@dataclasses.dataclass
class Unreadable:
    """A row rejected before parsing: its data-row number, the reason and its text."""

    row: int
    reason: str
    text: str


@dataclasses.dataclass
class RecordBlock:
    text: bytes | memoryview
    """The block's readable records, in order, for the parser."""
    rows: np.ndarray | None
    """Block-relative data-row number of each record in `text`; None when every line of `text` is one record
    (no quotes), so that the parser's own count numbers them."""
    records: int
    """Records in the block, readable and rejected (0 when `rows` is None: the parser counts them)."""
    unreadable: list[Unreadable]
    """Rows rejected here, block-relative."""


def split(data: bytes | bytearray, eof: bool, delimiter: str, fields: int, max_row_bytes: int = MAX_ROW_BYTES,
          exact: bool = False) -> tuple[RecordBlock, int]:
    """The records among the whole lines of `data` (all of it at `eof`), and the bytes they take.

    The bytes after them (a line not ended yet, or a quote that may still close in the next text) are left
    for the next call, with more text appended.
    """
    end = len(data) if eof else data.rfind(b"\n") + 1
    if not end:
        return RecordBlock(b"", None, 0, []), 0
    if not exact and data.find(b'"', 0, end) < 0 and _no_long_line(data, end, max_row_bytes):
        return RecordBlock(memoryview(data)[:end], None, 0, []), end

    buf = np.frombuffer(data, np.uint8, count=end)
    ends = np.flatnonzero(buf == _NEWLINE) + 1
    if end and data[end - 1] != _NEWLINE:  # the file's last line, without a line break
        ends = np.append(ends, end)
    starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
    lengths = ends - starts
    quotes = np.bincount(np.searchsorted(ends, np.flatnonzero(buf == _QUOTE), side="right"), minlength=len(ends))
    candidates = np.flatnonzero(quotes > 0 if exact else quotes % 2 == 1)

    rejected = {int(i): ROW_TOO_LARGE for i in np.flatnonzero(lengths > max_row_bytes)}
    joined = np.zeros(len(ends), dtype=bool)  # the line continues the record of the line before
    taken, next_free = len(ends), 0
    for i in candidates.tolist():
        if i < next_free or i in rejected:
            continue
        span = _record_span(data, starts, ends, i, max_row_bytes, delimiter)
        if span is not None:
            lines, width = span
            if lines > 1 and width == fields and not _rows_on_their_own(data, starts, ends, i, i + lines - 1,
                                                                        delimiter, fields):
                joined[i + 1:i + lines] = True
                next_free = i + lines
            elif lines > 1:  # the quote closes, but joins what look like separate rows: a stray quote
                rejected[i] = UNTERMINATED_QUOTE
            continue
        if not eof and len(data) - starts[i] <= max_row_bytes:  # the quote may close in the text still to come
            taken = i
            break
        rejected[i] = UNTERMINATED_QUOTE

    first_lines = np.flatnonzero(~joined[:taken] & ~_blank(buf, starts[:taken], lengths[:taken]))
    is_rejected = np.isin(first_lines, np.fromiter(rejected, dtype=np.int64, count=len(rejected)))
    unreadable = [Unreadable(int(r), rejected[int(first_lines[r])], _line_text(data, starts, ends, first_lines[r]))
                  for r in np.flatnonzero(is_rejected)]
    used = int(starts[taken]) if taken < len(ends) else end
    return RecordBlock(_without_lines(data, starts, ends, sorted(i for i in rejected if i < taken), used),
                       np.flatnonzero(~is_rejected), len(first_lines), unreadable), used


def too_large_text(text: bytes) -> str:
    """What rejected.parquet keeps of a row over the size limit: its start and its size."""
    return text[:KEPT_CHARS].decode("utf8", errors="replace") + f"... ({len(text):,}+ bytes)"


def _no_long_line(data: bytes, end: int, max_row_bytes: int) -> bool:
    """True when no line in data[:end] is max_row_bytes long: every aligned window of half that holds a line
    break (a longer line would hold a whole window). A few hundred memchr calls per chunk."""
    half = max_row_bytes // 2
    return all(data.find(b"\n", start, start + half) >= 0 for start in range(0, end - half + 1, half))


def _record_span(data: bytes, starts: np.ndarray, ends: np.ndarray, i: int, max_row_bytes: int,
                 delimiter: str) -> tuple[int, int] | None:
    """(lines, fields) of the record that starts at line i, or None when its quote does not close within
    max_row_bytes or the lines at hand."""
    last = int(np.searchsorted(ends, starts[i] + max_row_bytes, side="right"))
    lines = [data[starts[m]:ends[m]].decode("utf8", errors="replace") for m in range(i, max(last, i + 1))]
    reader = csv.reader([*lines, "\n"], delimiter=delimiter)  # the reader takes the last line only if still quoted
    try:
        row = next(reader)
    except (csv.Error, StopIteration):
        return None
    return (reader.line_num, len(row)) if reader.line_num <= len(lines) else None


def _rows_on_their_own(data: bytes, starts: np.ndarray, ends: np.ndarray, first: int, last: int, delimiter: str,
                       fields: int) -> bool:
    """Whether the first and the last line of a multi-line record each hold a whole row when their quotes are
    read as plain characters: then a stray quote joined two rows (a value with a line break leaves a part of
    its row on each line, so neither has all the fields)."""
    def width(line: int) -> int:
        text = data[starts[line]:ends[line]].decode("utf8", errors="replace").rstrip("\r\n")
        return len(next(csv.reader([text], delimiter=delimiter, quoting=csv.QUOTE_NONE)))

    return width(first) == fields and width(last) == fields


def _blank(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Lines with nothing but a line break: pyarrow skips them, and they are no row."""
    first = buf[np.minimum(starts, len(buf) - 1)] if len(buf) else np.zeros(len(starts), np.uint8)
    second = buf[np.minimum(starts + 1, len(buf) - 1)] if len(buf) else first
    return ((lengths == 1) & (first == _NEWLINE)) | ((lengths == 2) & (first == _RETURN) & (second == _NEWLINE))


def _line_text(data: bytes, starts: np.ndarray, ends: np.ndarray, line: int) -> str:
    raw = data[starts[line]:ends[line]]
    if len(raw) > KEPT_CHARS:
        return too_large_text(raw)
    return raw.decode("utf8", errors="replace").rstrip("\r\n")


def _without_lines(data: bytes, starts: np.ndarray, ends: np.ndarray, lines: list[int],
                   used: int) -> bytes | memoryview:
    if not lines:
        return memoryview(data)[:used]
    pieces, position = [], 0
    for line in lines:
        pieces.append(data[position:starts[line]])
        position = int(ends[line])
    pieces.append(data[position:used])
    return b"".join(pieces)
