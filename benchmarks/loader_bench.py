"""Loader throughput and peak memory on generated REES46-format CSVs of growing size.

    .venv/bin/python benchmarks/loader_bench.py                       # 1M and 5M rows
    .venv/bin/python benchmarks/loader_bench.py --rows 200000 --keep  # quick look, keep the files

Each CSV is the shipped REES46 head sample (5,019 rows, 2.5 hours) repeated: copy k is shifted k * 2.5 h
later, its session ids are new (first 8 hex digits = k) and its user ids come from a pool of 50 variants
per sample user, so users come back over the "month" as they do in the real data. Product ids, categories,
brands and prices are the sample's.

Every load runs `signals load` in its own subprocess; its peak RSS is that process's VmHWM.
Two loads per file: `rees46` (the file's session ids) and `csv` with a mapping that leaves out the session
column, so that sessions are cut by inactivity through the user-hash partitions (the path Taobao takes).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "data" / "samples" / "rees46-2019-Oct-head.csv"
USER_POOL = 50
"""Variants of each sample user: copy k uses variant k % USER_POOL."""
COPIES_PER_WRITE = 100

SESSIONLESS_MAPPING = """\
columns:
  user_id: user_id
  ts: event_time
  event_type: event_type
  product_id: product_id
  category: [category_code, category_id]
  brand: brand
  price: price
timestamp:
  format: "%Y-%m-%d %H:%M:%S UTC"
"""

# `signals load` exactly as cli/main.py runs it, minus importing the other subcommands (whose module
# tops are standard library only, so they add nothing to the memory measured here). The peak is the
# process's own VmHWM: ru_maxrss from wait4 would also count the benchmark process it was forked from.
REPORT_PEAK = """
import atexit, sys
def report_peak():
    peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print("peak_rss_kib", peak.split()[1], file=sys.stderr)
atexit.register(report_peak)
"""
LOAD_COMMAND = REPORT_PEAK + """
import argparse
from cli.commands import load
parser = argparse.ArgumentParser(prog="signals load")
load.add_arguments(parser)
sys.exit(load.run(parser.parse_args(sys.argv[1:])))
"""
IMPORT_ONLY = REPORT_PEAK + """
import events.loaders.pipeline, events.loaders.formats.mapped, events.loaders.formats.rees46
"""


def generate(rows: int, path: Path) -> None:
    """Write a REES46-format CSV of `rows` rows built from the shipped sample."""
    sample = pacsv.read_csv(SAMPLE, convert_options=pacsv.ConvertOptions(
        column_types={name: pa.string() for name in SAMPLE.open().readline().strip().split(",")}))
    size = sample.num_rows
    seconds = pc.cast(pc.strptime(sample["event_time"], "%Y-%m-%d %H:%M:%S UTC", "s"), pa.int64()).to_numpy()
    span = int(seconds.max() - seconds.min()) + 1
    users = pc.cast(sample["user_id"], pa.int64()).to_numpy()
    session_tails = pc.utf8_slice_codeunits(sample["user_session"], 8).combine_chunks()
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    # REES46 quotes nothing (no value holds a comma) and leaves empty fields empty
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with path.open("wb") as file, pacsv.CSVWriter(file, sample.schema, write_options=options) as writer:
        file.write((",".join(sample.column_names) + "\n").encode())
        copy = 0
        while written < rows:
            copies = np.arange(copy, copy + COPIES_PER_WRITE)
            copy += COPIES_PER_WRITE
            take = min(rows - written, len(copies) * size)
            copy_of_row = np.repeat(copies, size)[:take]
            row_in_sample = np.tile(np.arange(size), len(copies))[:take]
            block = sample.take(pa.array(row_in_sample))
            times = pc.strftime(pa.array(seconds[row_in_sample] + copy_of_row * span, pa.timestamp("s")),
                                "%Y-%m-%d %H:%M:%S")
            prefixes = pa.array(np.char.mod("%08x", copy_of_row))
            columns = {
                "event_time": pc.binary_join_element_wise(times, " UTC", ""),
                "user_id": pc.cast(pa.array(users[row_in_sample] + (copy_of_row % USER_POOL) * 10**9), pa.string()),
                "user_session": pc.binary_join_element_wise(prefixes, pc.take(session_tails, row_in_sample), ""),
            }
            block = pa.table({name: columns.get(name, block[name]) for name in sample.column_names})
            block = pa.table({name: pc.if_else(pc.equal(col, ""), None, col) for name, col in zip(
                block.column_names, block.columns, strict=True)})
            writer.write_table(block)
            written += take


def measure(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, stdout) of one subprocess."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stdout}\n{done.stderr}")
    peak_kib = next(line.split()[1] for line in done.stderr.splitlines() if line.startswith("peak_rss_kib"))
    return wall, int(peak_kib) / 1024, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "data" / "generated" / "loader-bench")
    parser.add_argument("--keep", action="store_true", help="keep the generated CSVs and outputs")
    args = parser.parse_args()

    args.workdir = args.workdir.resolve()  # the loads run in the repository root
    args.workdir.mkdir(parents=True, exist_ok=True)
    mapping = args.workdir / "rees46-without-sessions.yaml"
    mapping.write_text(SESSIONLESS_MAPPING)
    load_at_start = os.getloadavg()[0]
    _, import_rss, _ = measure([sys.executable, "-c", IMPORT_ONLY])
    results = []
    for rows in args.rows:
        csv_path = args.workdir / f"rees46-{rows}.csv"
        started = time.perf_counter()
        generate(rows, csv_path)
        print(f"generated {csv_path} ({csv_path.stat().st_size / 1e6:,.0f} MB) in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        for label, extra in (("rees46", ["--format", "rees46"]),
                             ("csv, sessions cut by gap", ["--format", "csv", "--mapping", str(mapping)])):
            out = args.workdir / f"out-{rows}-{extra[1]}"
            wall, rss, stdout = measure([sys.executable, "-c", LOAD_COMMAND, str(csv_path), "--out", str(out),
                                         *extra])
            report = json.loads((out / "load_report.json").read_text())
            assert report["rows_read"] == rows == report["rows_accepted"] + report["rows_rejected"]
            results.append({"rows": rows, "load": label, "file_mb": csv_path.stat().st_size / 1e6, "wall_s": wall,
                            "rows_per_s": rows / wall, "peak_rss_mib": rss, "users": report["users"],
                            "sessions": report["sessions"]})
            print(stdout, flush=True)
            if not args.keep:
                for file in out.iterdir():
                    file.unlink()
                out.rmdir()
        if not args.keep:
            csv_path.unlink()

    print(f"\nPython {sys.version.split()[0]}, pyarrow {pa.__version__}, {os.cpu_count()} CPUs, load average "
          f"{load_at_start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end; "
          f"peak RSS of importing the loaders alone: {import_rss:,.0f} MiB\n")
    print("| rows | load | CSV size | wall | throughput | peak RSS | users | sessions |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['rows']:,} | {r['load']} | {r['file_mb']:,.0f} MB | {r['wall_s']:.1f} s | "
              f"{r['rows_per_s']:,.0f} rows/s | {r['peak_rss_mib']:,.0f} MiB | {r['users']:,} | {r['sessions']:,} |")


if __name__ == "__main__":
    main()
