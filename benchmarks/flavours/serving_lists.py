"""What the lists by purpose cost the endpoint: the old answer and every list asked for, in the same run,
against one server on the realistic bundle (benchmarks/serving/realistic_bundle.py, 50,000 products).

    python -m benchmarks.flavours.serving_lists [--duration 20] [--users 1 32] [--rounds 1] [--products 50000]
    python -m benchmarks.flavours.serving_lists --per-list   # in process: what each list costs alone

The bundle gets list tables of the real shapes (20 complements per product, a price per product, a customer
index of 20,000 buyers with 10 purchases each) and the
server a trends table of the same catalogue (SIGNALS_TRENDS). The shoppers are benchmarks/serving/run.py's;
"lists" bodies are the same shoppers asking for 5 of each list. Figures: in-process engine latency for one
request (old and lists requests alternating in one engine), then `--rounds` rounds of locust at each
concurrency, old and lists alternating, each row with the server's CPU time per request (all its processes:
a figure the load generator, which shares the machine, does not distort). The summary gives medians over
rounds and the median of the same-round ratios lists / old.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.serving.run import locust, shopper_bodies

LISTS = {"next": 5, "complementary": 5, "similar": 5, "trending": 5, "people_like_you": 5, "recently_viewed": 5}


def add_list_tables(bundle: Path, seed: int = 0) -> None:
    """Random complements and prices of the real shapes: speed depends on shapes, not on what was learnt."""
    from safetensors.numpy import save_file

    from models.bundle import LIST_ARRAYS, load_bundle
    from models.customer_index import unit_rows
    from training.list_tables import (
        COMPLEMENTS_PER_PRODUCT,
        INDEXED_CUSTOMERS,
        PURCHASES_PER_CUSTOMER,
    )

    model, encoder, _ = load_bundle(bundle)
    rng = np.random.default_rng(seed)
    n = len(encoder.products)
    ids = rng.integers(2, n, (n, COMPLEMENTS_PER_PRODUCT)).astype(np.int32)
    scores = np.sort(rng.random((n, COMPLEMENTS_PER_PRODUCT)).astype(np.float32), axis=1)[:, ::-1].copy()
    price = rng.lognormal(3.0, 1.0, n).astype(np.float32)
    vectors = unit_rows(rng.standard_normal((INDEXED_CUSTOMERS, model.cfg.d_model)))  # the full index: (N, D)
    purchases = rng.integers(2, n, (INDEXED_CUSTOMERS, PURCHASES_PER_CUSTOMER)).astype(np.int32)
    save_file({"complement_ids": ids, "complement_score": scores, "product_price": price,
               "customer_vectors": vectors, "customer_purchases": purchases}, str(bundle / LIST_ARRAYS))


def write_trends_for(bundle: Path, out: Path, seed: int = 0) -> None:
    """A trends table over the bundle's catalogue: a week of Zipf-popular purchases and views."""
    from events.trends import compute_trends, write_trends
    from models.bundle import load_bundle

    _, encoder, _ = load_bundle(bundle)
    rng = np.random.default_rng(seed)
    picks = np.minimum(rng.zipf(1.3, 200_000), len(encoder.products) - 2) + 1  # ids >= 2
    now = pd.Timestamp.now(tz="UTC")
    events = pd.DataFrame({
        "ts": now - pd.to_timedelta(rng.uniform(0, 7 * 86400, len(picks)), unit="s"),
        "event_type": rng.choice(["view", "purchase"], len(picks), p=[0.9, 0.1]),
        "product_id": encoder.products.decode(picks), "category": encoder.categories.decode(encoder.product_category[picks]),
        "brand": encoder.brands.decode(encoder.product_brand[picks]), "price": rng.lognormal(3.0, 1.0, len(picks))})
    write_trends(*compute_trends(events, days=7), out)


def engine_ms(bundle: Path, trends: Path, variants: dict[str, list[dict]], repeats: int) -> dict[str, dict[str, float]]:
    """Per variant, p50/p99 of the engine (history, encoding, forward, filters, lists, response) for one
    request; the variants' requests alternate, so a change in the machine's load hits all alike."""
    from datetime import UTC, datetime

    import torch

    from benchmarks.serving.compile_check import latencies_ms
    from serving.api_types import ModelIdentity, ShopperRequest
    from serving.engine import SignalsEngine
    from serving.segments import load_rules
    from serving.settings import DEFAULT_SEGMENTS_CONFIG

    torch.set_num_threads(1)  # the server's SIGNALS_TORCH_THREADS default
    engine = SignalsEngine.from_bundle(bundle, ModelIdentity(name="bench", version=None, run_id=None),
                                       load_rules(DEFAULT_SEGMENTS_CONFIG), trends)
    requests = {name: [ShopperRequest.model_validate(b) for b in bodies] for name, bodies in variants.items()}
    now = [datetime.now(UTC)]
    calls = [(name, request) for i in range(repeats) for name, rs in requests.items() for request in [rs[i % len(rs)]]]
    timed = iter(calls * 2)  # the first pass warms up
    ms = latencies_ms(lambda: engine.predict([next(timed)[1]], now)[0].model_dump_json(), len(calls), len(calls))
    names = np.array([name for name, _ in calls])
    return {name: {"engine_p50_ms": float(np.median(ms[names == name])),
                   "engine_p99_ms": float(np.percentile(ms[names == name], 99))} for name in variants}


def per_list_cpu_ms(bundle: Path, trends: Path, old: list[dict], batch: int, repeats: int) -> dict[str, float]:
    """CPU ms per request (p50 over `repeats` batches, `time.thread_time`: what other jobs on the machine take
    does not count) of the old answer, of each list asked for alone (k = 5) and of all six, batches of the
    variants alternating in one engine."""
    import time
    from datetime import UTC, datetime

    import torch

    from serving.api_types import ModelIdentity, ShopperRequest
    from serving.engine import SignalsEngine
    from serving.segments import load_rules
    from serving.settings import DEFAULT_SEGMENTS_CONFIG

    torch.set_num_threads(1)
    engine = SignalsEngine.from_bundle(bundle, ModelIdentity(name="bench", version=None, run_id=None),
                                       load_rules(DEFAULT_SEGMENTS_CONFIG), trends)
    variants = {"old answer": None, **{name: {name: 5} for name in LISTS}, "all six": LISTS}
    requests = {name: [ShopperRequest.model_validate({**b, "lists": lists} if lists else b) for b in old]
                for name, lists in variants.items()}
    now = datetime.now(UTC)
    ms: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(-1, repeats):  # round -1 warms up
        for name, rs in requests.items():
            shoppers = [rs[(i * batch + j) % len(rs)] for j in range(batch)]
            start = time.thread_time()
            for answer in engine.predict(shoppers, [now] * batch):
                answer.model_dump_json()
            if i >= 0:
                ms[name].append((time.thread_time() - start) * 1e3 / batch)
    return {name: float(np.median(v)) for name, v in ms.items()}


def server_cpu_s(pid: int) -> float:
    """CPU seconds used so far by the server: its arbiter and every worker (user + system)."""
    import psutil

    server = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [server, *server.children(recursive=True)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20, help="seconds per concurrency level and variant")
    parser.add_argument("--users", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--rounds", type=int, default=1,
                        help="locust rows per variant and concurrency, alternating (3 for the README figures)")
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=300, help="timed calls per in-process figure")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--per-list", action="store_true",
                        help="instead of the server: CPU per request of each list alone, batches of 1 and 16")
    args = parser.parse_args()

    from benchmarks.serving.realistic_bundle import build
    from models.bundle import load_bundle
    from serving.process import (
        SERVER_ENV,
        free_port,
        start_server,
        stop_server,
        wait_until_ready,
    )

    if any(key not in os.environ for key in SERVER_ENV):  # in-process figures under the server's environment
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks.flavours.serving_lists", *sys.argv[1:]],
                  {**SERVER_ENV, **os.environ})
    with tempfile.TemporaryDirectory(prefix="lists-bench-") as tmp:
        tmp = Path(tmp)
        bundle = build(tmp / "bundle", n_products=args.products)
        add_list_tables(bundle)
        write_trends_for(bundle, tmp / "trends")
        _, encoder, _ = load_bundle(bundle)
        old = shopper_bodies(encoder, 512)
        if args.per_list:
            figures = {batch: per_list_cpu_ms(bundle, tmp / "trends", old, batch, max(args.repeats // batch, 20))
                       for batch in (1, 16)}
            print("| list (CPU ms per request) | batch 1 | batch 16 |\n|---|---:|---:|")
            for name in figures[1]:  # the old answer's cost, then each variant's over it
                cells = [f"{figures[b][name]:.2f}" if name == "old answer" else
                         f"{figures[b][name] - figures[b]['old answer']:+.2f}" for b in (1, 16)]
                print(f"| {name} | {' | '.join(cells)} |")
            print(f"\nload average: {os.getloadavg()[0]:.2f}")
            return
        variants = {"old answer": old, "all lists": [{**body, "lists": LISTS} for body in old]}
        results: dict = {"load_average": os.getloadavg(), "in_process": {}, "http": []}
        for name, bodies in variants.items():
            (tmp / f"{name}.json").write_text(json.dumps(bodies))
        results["in_process"] = engine_ms(bundle, tmp / "trends", variants, args.repeats)
        env = {"SIGNALS_BUNDLE": str(bundle), "BENTOML_HOME": str(tmp / "bentoml"), "SIGNALS_TRENDS": str(tmp / "trends")}
        port = free_port()
        proc = start_server(port, env, log_file=tmp / "server.log")
        try:
            wait_until_ready(f"http://127.0.0.1:{port}", timeout_s=180, proc=proc)
            for round_ in range(1, args.rounds + 1):
                for users in args.users:
                    for name in variants:
                        # from locust's start: its statistics reset after the ramp-up, so this includes a
                        # second or so of ramp at 32 clients (the same for both variants)
                        cpu = server_cpu_s(proc.pid)
                        row = locust(f"http://127.0.0.1:{port}", users, args.duration, tmp / f"{name}.json", tmp)
                        cpu = server_cpu_s(proc.pid) - cpu
                        results["http"].append({"round": round_, "variant": name, **row, "server_cpu_s": cpu})
        finally:
            stop_server(proc)
        results["load_average_after"] = os.getloadavg()
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def markdown(results: dict) -> str:
    ip = results["in_process"]
    lines = ["in process, 1 request (p50 / p99 ms): " + "; ".join(
                 f"{name} {f['engine_p50_ms']:.2f} / {f['engine_p99_ms']:.2f}" for name, f in ip.items()), "",
             "| round | answer | clients | requests/s | p50 ms | p99 ms | server CPU ms / request | errors |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for row in results["http"]:
        lines.append(f"| {row['round']} | {row['variant']} | {row['users']} | {row['rps']:.0f} | {row['p50_ms']:.0f} | "
                     f"{row['p99_ms']:.0f} | {cpu_ms_per_request(row):.2f} | {row['failures']} / {row['requests']} |")
    lines += ["", "| clients | figure | old answer (median) | all lists (median) | all / old: median of same-round ratios |",
              "|---:|---|---:|---:|---:|"]
    for users, figure, value in [(u, f, v) for u in sorted({r["users"] for r in results["http"]}) for f, v in FIGURES]:
        old, lists = ([value(r) for r in results["http"] if r["users"] == users and r["variant"] == name]
                      for name in ("old answer", "all lists"))
        lines.append(f"| {users} | {figure} | {np.median(old):.1f} | {np.median(lists):.1f} | "
                     f"{np.median(np.array(lists) / np.array(old)):.2f} |")
    lines.append(f"\nload average before / after: {results['load_average'][0]:.2f} / {results['load_average_after'][0]:.2f}")
    return "\n".join(lines)


def cpu_ms_per_request(row: dict) -> float:
    return 1e3 * row["server_cpu_s"] / max(row["requests"], 1)


FIGURES = [("requests/s", lambda r: r["rps"]), ("p99 ms", lambda r: r["p99_ms"]),
           ("server CPU ms / request", cpu_ms_per_request)]


if __name__ == "__main__":
    main()
