"""What a traffic split costs the server: /predict with and without an experiment, in the same run.

    python -m benchmarks.serving.experiment_overhead [--duration 15] [--rounds 2] [--products 50000]

The realistic bundle (benchmarks/serving/realistic_bundle.py) served plainly, then as both arms of a 50/50
experiment (two engines per worker, hash assignment, the assignment log on disk; no holdout, which would
skip the model for a tenth of the shoppers and flatter the split). Rounds alternate without / with, so a
busy neighbour on the machine hurts both alike. Each: locust sequential (1 client: p50, p99) and 32 clients
(requests/s, p99), shoppers with user ids (benchmarks/serving/run.py: shopper_bodies). Prints a markdown table,
after the in-process attribution of the cost: a batch of 32 on one engine, split over two engines, and split
over one shared engine (the split's own bookkeeping).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.serving.run import locust, shopper_bodies


def experiment_env(bundle: Path, log_dir: Path) -> dict[str, str]:
    from serving.experiment import AssignmentLogConfig, PinnedArm, PinnedExperiment

    identity = {"name": bundle.name, "version": None, "run_id": None}
    pinned = PinnedExperiment("bench-split", "a", (PinnedArm("a", 0.5, str(bundle), identity),
                                                   PinnedArm("b", 0.5, str(bundle), identity)),
                              AssignmentLogConfig(dir=str(log_dir)))
    return {"SIGNALS_EXPERIMENT": pinned.to_json()}


def in_process_ms(bundle: Path, bodies: list[dict], repeats: int = 40) -> dict[str, float]:
    """Median ms of a batch of 32 through one engine, through a 50/50 split over two engines (two models), and
    through a split whose arms share one engine (the split's bookkeeping alone); and the assignment per shopper."""
    from datetime import UTC, datetime

    import numpy as np
    import torch

    from serving.api_types import ModelIdentity, ShopperRequest
    from serving.assignment_log import AssignmentLog
    from serving.engine import SignalsEngine
    from serving.experiment import PinnedExperiment, Split
    from serving.segments import load_rules
    from serving.settings import DEFAULT_SEGMENTS_CONFIG
    from serving.split_engine import SplitEngine

    torch.set_num_threads(1)
    rules = load_rules(DEFAULT_SEGMENTS_CONFIG)
    identity = ModelIdentity(name=bundle.name, version=None, run_id=None)
    first, second = (SignalsEngine.from_bundle(bundle, identity, rules) for _ in range(2))
    experiment = PinnedExperiment.from_json(experiment_env(bundle, bundle.parent / "inproc-log")["SIGNALS_EXPERIMENT"])
    cfg = experiment.log

    def log() -> AssignmentLog:
        return AssignmentLog(Path(cfg.dir), experiment.name, max_file_mb=cfg.max_file_mb, queue_size=cfg.queue_size,
                             max_file_minutes=cfg.max_file_minutes, fsync_seconds=cfg.fsync_seconds, min_free_mb=1)
    two = SplitEngine(experiment, {"a": first, "b": second}, log())
    shared = SplitEngine(experiment, {"a": first, "b": first}, log())
    batch = [ShopperRequest.model_validate(b) for b in bodies[:32]]
    now = [datetime.now(UTC)] * len(batch)

    def median_ms(fn, n: int = repeats) -> float:
        fn()
        times = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return float(np.median(times) * 1000)

    split = Split.of(experiment)
    return {"one_engine_batch32_ms": median_ms(lambda: first.predict(batch, now)),
            "split_two_engines_batch32_ms": median_ms(lambda: two.predict(batch, now)),
            "split_shared_engine_batch32_ms": median_ms(lambda: shared.predict(batch, now)),
            "assignment_us": median_ms(lambda: [split.arm_of(r.user_id) for r in batch], 200) * 1000 / len(batch)}


def measure(env: dict[str, str], bodies: Path, duration_s: int, tmp: Path) -> dict[str, float]:
    from serving.process import free_port, start_server, stop_server, wait_until_ready

    port = free_port()
    proc = start_server(port, env, log_file=tmp / "server.log")
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", timeout_s=300, proc=proc)
        one = locust(f"http://127.0.0.1:{port}", 1, duration_s, bodies, tmp)
        many = locust(f"http://127.0.0.1:{port}", 32, duration_s, bodies, tmp)
    finally:
        stop_server(proc)
    return {"seq_p50_ms": one["p50_ms"], "seq_p99_ms": one["p99_ms"], "rps_32": many["rps"],
            "p99_32_ms": many["p99_ms"], "errors": one["failures"] + many["failures"],
            "requests": one["requests"] + many["requests"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds per load level")
    parser.add_argument("--rounds", type=int, default=2, help="without/with pairs")
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--in-process-only", action="store_true", help="only the in-process attribution (no server)")
    args = parser.parse_args()

    from benchmarks.serving.realistic_bundle import build
    from events.exposures import read_exposures
    from models.bundle import load_bundle
    from serving.process import SERVER_ENV

    if any(key not in os.environ for key in SERVER_ENV):
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks.serving.experiment_overhead", *sys.argv[1:]],
                  {**SERVER_ENV, **os.environ})
    with tempfile.TemporaryDirectory(prefix="split-bench-") as tmp:
        tmp = Path(tmp)
        bundle = build(tmp / "bundle", n_products=args.products)
        bodies = tmp / "bodies.json"
        shoppers = shopper_bodies(load_bundle(bundle)[1], 512)
        bodies.write_text(json.dumps(shoppers))
        base = {"SIGNALS_BUNDLE": str(bundle), "BENTOML_HOME": str(tmp / "bentoml")}
        results: dict = {"in_process": in_process_ms(bundle, shoppers), "without": [], "with": []}
        print(json.dumps(results["in_process"]))
        if args.in_process_only:
            return
        for r in range(args.rounds):
            results["without"].append(measure(base, bodies, args.duration, tmp))
            log_dir = tmp / f"log-{r}"
            results["with"].append(measure({**base, **experiment_env(bundle, log_dir)}, bodies, args.duration, tmp))
            results["with"][-1]["logged"] = len(read_exposures(log_dir).exposures)
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def markdown(results: dict) -> str:
    lines = ["| round | split | sequential p50 ms | sequential p99 ms | req/s at 32 clients | p99 ms at 32 | errors "
             "| exposures logged |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r, (off, on) in enumerate(zip(results["without"], results["with"]), start=1):
        for name, x in (("without", off), ("with", on)):
            lines.append(f"| {r} | {name} | {x['seq_p50_ms']:.0f} | {x['seq_p99_ms']:.0f} | {x['rps_32']:.0f} | "
                         f"{x['p99_32_ms']:.0f} | {x['errors']} / {x['requests']} | {x.get('logged', '')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
