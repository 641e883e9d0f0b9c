"""`load_events`: stream a source's files through validation into the canonical table, counting every row.

Per chunk: read raw rows -> extract candidate fields -> judge each row -> rejected rows go to
rejected.parquet at once, accepted rows to events.parquet (or, for sources without session ids, to
user-hash partitions that are sessionized afterwards; see sessionize.py). Nothing holds more than a chunk
or a partition in memory.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from events.errors import UserFacingError
from events.loaders.formats.base import Source
from events.loaders.options import LoadOptions
from events.loaders.readers import RawChunk
from events.loaders.registry import open_source
from events.loaders.report import REPORT_FILE, InputFile, LoadReport
from events.loaders.sessionize import partition_count, sessionized
from events.loaders.stats import LoadStats
from events.loaders.validation import Rules, judge
from events.loaders.writer import (
    ParquetSink,
    rejected_rows,
    rejected_schema,
    unreadable_rows,
)
from events.schema import CANONICAL_SCHEMA, EVENTS_FILE, REJECTED_FILE
from events.source import file_sha256


def load_events(format: str, inputs: list[Path | str], out_dir: Path | str, **options: Any) -> LoadReport:
    """Load `inputs` of `format` into `out_dir`: events.parquet, rejected.parquet and load_report.json.

    Options (see LoadOptions): session_gap_minutes, mapping, keep_extra_types, event_types, ts_min, ts_max,
    chunk_bytes. Raises UserFacingError for unreadable files, missing columns and bad mappings.
    """
    load_options = LoadOptions(**options)
    paths = [Path(p) for p in inputs]
    if load_options.mapping is not None and format not in ("csv", "parquet"):
        raise UserFacingError(f"--mapping applies to the csv and parquet formats, not {format}")
    source = open_source(format, paths, load_options)
    rules = Rules(
        event_types={**source.event_types, **load_options.event_types},
        keep_extra_types=source.keep_extra_types or load_options.keep_extra_types,
        ts_min=load_options.ts_min or source.ts_min,
        ts_max=load_options.ts_max or source.ts_max,
    )
    out_dir = Path(out_dir)
    check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place at the end: a killed load leaves the previous
    # finished load (or nothing) under out_dir, never a mix of old and new files.
    work = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.partial-"))
    try:
        report = _load_into(source, paths, rules, load_options, work, out_dir)
    except (pa.ArrowException, ValueError, TypeError, OverflowError, KeyError) as err:
        shutil.rmtree(work, ignore_errors=True)
        # past the per-chunk checks (sessions, writing): still an error naming the files, not a traceback
        raise UserFacingError(f"loading {', '.join(map(str, paths))}: {type(err).__name__}: "
                              f"{_first_line(err)}") from err
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    replace_folder(work, out_dir)
    return report


LOAD_FILES = {EVENTS_FILE, REJECTED_FILE, REPORT_FILE}


def check_replaceable(out_dir: Path) -> None:
    """A load may replace an empty folder or an earlier load, never a folder holding anything else."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise UserFacingError(f"--out {out_dir}: exists and is not a folder")
        others = sorted(p.name for p in out_dir.iterdir() if p.name not in LOAD_FILES)
        if others:
            raise UserFacingError(f"--out {out_dir}: holds files a load did not write ({', '.join(others[:5])}); "
                                  "choose an empty folder or an earlier load's folder")


def replace_folder(new: Path, target: Path) -> None:
    """Put the finished folder `new` at `target`, moving any earlier one out of the way first."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.replaced-"))
        os.replace(target, old / target.name)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _load_into(source: Source, paths: list[Path], rules: Rules, load_options: LoadOptions, work: Path,
               out_dir: Path) -> LoadReport:
    """Write events, rejected rows and the report into `work`; the report names `out_dir`, their final home."""
    stats = LoadStats()
    columns = list(dict.fromkeys(name for item in source.inputs for name in item.reader.columns))
    with ParquetSink(work / EVENTS_FILE, CANONICAL_SCHEMA) as events, \
            ParquetSink(work / REJECTED_FILE, rejected_schema(columns)) as rejected:
        accepted = _judged_chunks(source, rules, rejected, stats)
        if source.has_session_ids:
            _write_all(accepted, events, stats)
        else:
            partitions = partition_count(sum(item.reader.size_hint_rows for item in source.inputs))
            with tempfile.TemporaryDirectory(dir=work, prefix=".partitions-") as spill_dir:
                spill = Path(spill_dir) / "by_user"
                _write_all(sessionized(accepted, load_options.session_gap_minutes, partitions, spill), events, stats)

    report = _report(source, paths, out_dir, stats, load_options)
    report.write(work / REPORT_FILE)  # last: a folder with a report holds a finished load
    return report


def _judged_chunks(source: Source, rules: Rules, rejected: ParquetSink, stats: LoadStats) -> Iterator[pa.Table]:
    """Accepted rows of every chunk of every input, in input order.

    Rejected rows are written to `rejected` as their chunk passes, so they need no memory of their own.
    """
    for item in source.inputs:
        rows_read = 0
        for chunk in item.reader.chunks():
            rows_read += chunk.table.num_rows + len(chunk.unreadable)
            if chunk.unreadable:
                unreadable = unreadable_rows(chunk, str(item.path), rejected.schema)
                rejected.write(unreadable)
                stats.add_rejected(unreadable.column("reason"))
            if not chunk.table.num_rows:  # only unreadable rows (and pyarrow 25 crashes on some empty arrays)
                continue
            try:
                judgement = judge(item.extract(chunk.table), rules)
                rejected.write(rejected_rows(chunk, judgement.rejected, judgement.reasons, str(item.path),
                                             rejected.schema))
            except UserFacingError as err:
                raise UserFacingError(f"{item.path}: {_rows(chunk)}: {err}") from None
            except (pa.ArrowException, ValueError, TypeError, OverflowError, KeyError) as err:
                # what no check above foresaw still names the file and rows, never a bare traceback
                raise UserFacingError(f"{item.path}: {_rows(chunk)}: cannot load them ({type(err).__name__}: "
                                      f"{_first_line(err)})") from err
            stats.add_rejected(judgement.reasons)
            yield judgement.accepted
        stats.rows_read_per_input.append(rows_read)


def _rows(chunk: RawChunk) -> str:
    return f"data rows {int(chunk.source_rows[0]):,} to {int(chunk.source_rows[-1]):,}"


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else ""


def _write_all(tables: Iterator[pa.Table], events: ParquetSink, stats: LoadStats) -> None:
    for table in tables:
        events.write(table)
        stats.add_accepted(table)


def _report(source: Source, paths: list[Path], out_dir: Path, stats: LoadStats, options: LoadOptions) -> LoadReport:
    rows_read = sum(stats.rows_read_per_input)
    rows_rejected = sum(stats.rejected_by_reason.values())
    if rows_read != stats.rows_accepted + rows_rejected:  # the promise of this package: no row is lost
        raise AssertionError(f"row accounting broke: read {rows_read:,} != accepted {stats.rows_accepted:,} "
                             f"+ rejected {rows_rejected:,}")
    return LoadReport(
        format=source.format_name,
        inputs=[InputFile(str(path), file_sha256(path), rows)
                for path, rows in zip(paths, stats.rows_read_per_input, strict=True)],
        out_dir=str(out_dir),
        rows_read=rows_read,
        rows_accepted=stats.rows_accepted,
        rows_rejected=rows_rejected,
        rejected_by_reason=dict(stats.rejected_by_reason.most_common()),
        users=stats.users.count(),
        sessions=stats.sessions.count(),
        products=stats.products.count(),
        event_types=dict(stats.event_types.most_common()),
        ts_min=stats.ts_min.isoformat() if stats.ts_min else None,
        ts_max=stats.ts_max.isoformat() if stats.ts_max else None,
        session_gap_minutes=None if source.has_session_ids else options.session_gap_minutes,
    )
