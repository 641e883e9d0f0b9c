"""Simulator throughput and peak memory.

Each size runs `signals simulate` in a fresh Python process that reports its own peak RSS
(resource.getrusage, so the figure is that run's alone) and CPU time; CPU time is given beside wall
time because on a shared machine wall time also counts other people's work.

    .venv/bin/python benchmarks/simulator_bench.py                  # 1M and 5M events
    .venv/bin/python benchmarks/simulator_bench.py --events 1000000 10000000 --out /tmp/simbench
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# Runs inside the child process: simulate, then print what it cost.
CHILD = """
import json, resource, sys, time
from cli.main import main
started = time.perf_counter()
code = main(sys.argv[1:])
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"code": code, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mb": usage.ru_maxrss / 1024}))
"""


def run_one(events: int, seed: int, out_dir: Path) -> dict[str, float]:
    command = [sys.executable, "-c", CHILD, "simulate", "--events", str(events),
               "--seed", str(seed), "--out", str(out_dir), "--no-progress"]
    # The child imports this checkout's packages from wherever the benchmark is started.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"failed: signals simulate --events {events} (exit {done.returncode})\n{done.stderr[-4000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    summary = json.loads((out_dir / "simulation.json").read_text())["summary"]
    sizes = {p.name: p.stat().st_size for p in out_dir.glob("*.parquet")}
    return {**figures, "events": summary["events"], "users": summary["users"],
            "events_per_s": summary["events"] / figures["wall_s"],
            "events_per_cpu_s": summary["events"] / figures["cpu_s"],
            "events_mb": sizes["events.parquet"] / 2 ** 20, "all_files_mb": sum(sizes.values()) / 2 ** 20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="folder for the outputs (default: a temporary one, removed)")
    args = parser.parse_args()

    base = args.out or Path(tempfile.mkdtemp(prefix="simbench-"))
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average at start "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| events | users | wall s | CPU s | events/s (wall) | events/s (CPU) | peak RSS MB | events.parquet MB | all files MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    try:
        for n in args.events:
            r = run_one(n, args.seed, base / f"sim-{n}")
            print(f"| {r['events']:,} | {r['users']:,} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['events_per_s']:,.0f} "
                  f"| {r['events_per_cpu_s']:,.0f} | {r['peak_rss_mb']:,.0f} | {r['events_mb']:.1f} | {r['all_files_mb']:.1f} |",
                  flush=True)
    finally:
        if args.out is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
