"""Loader before/after: alternate `signals load` of one generated CSV between two checkouts, same session.

    git archive <commit> | tar -x -C /tmp/before           # the code to compare against
    .venv/bin/python benchmarks/loader_ab.py /tmp/before --rows 2000000 --rounds 5

Prints wall and CPU seconds (user + system of the load process) per load and their medians; on a shared
machine CPU seconds are the steadier measure. The CSV is loader_bench's (the REES46 sample repeated).
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loader_bench import SESSIONLESS_MAPPING, generate

REPO_ROOT = Path(__file__).resolve().parents[1]
LOAD = ("import argparse, sys; from cli.commands import load; p = argparse.ArgumentParser(); "
        "load.add_arguments(p); load.run(p.parse_args(sys.argv[1:]))")


def timed_load(root: Path, args: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", LOAD, *args], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(root)}, cwd=root)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - started, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path, help="a checkout of the code to compare against")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    roots = {"before": args.before.resolve(), "after": REPO_ROOT}
    with tempfile.TemporaryDirectory() as work:
        csv, mapping = Path(work) / "rees46.csv", Path(work) / "sessionless.yaml"
        generate(args.rows, csv)
        mapping.write_text(SESSIONLESS_MAPPING)
        loads = {"rees46": ["--format", "rees46"], "csv, sessions cut by gap": ["--format", "csv", "--mapping",
                                                                                 str(mapping)]}
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for round_ in range(args.rounds):
            for side, root in roots.items():
                for label, extra in loads.items():
                    wall, cpu = timed_load(root, [str(csv), "--out", f"{work}/out-{side}", *extra])
                    results.setdefault((label, side), []).append((wall, cpu))
                    print(f"round {round_} {side:6} {label}: wall {wall:.1f} s, CPU {cpu:.2f} s, "
                          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    print("\n| load | code | median wall | median CPU | CPU rows/s |\n|---|---|---:|---:|---:|")
    for (label, side), values in results.items():
        wall, cpu = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
        print(f"| {label} | {side} | {wall:.1f} s | {cpu:.2f} s | {args.rows / cpu:,.0f} |")


if __name__ == "__main__":
    main()
