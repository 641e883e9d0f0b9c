"""Serving benchmark: latency and throughput of POST /predict against the in-process cost of the model.

    python -m benchmarks.serving.run [--bundle DIR] [--duration 20] [--users 1 8 32] [--env KEY=VALUE ...]
    python -m benchmarks.serving.run --products 2000 --repeats 20 --duration 3 --users 1   # seconds: a smoke run

1. A realistic bundle (50,000 products, window 50, random weights: benchmarks/serving/realistic_bundle.py)
   unless --bundle names one (--products sizes its catalogue).
2. In process, with the server's thread settings: the raw forward pass (+ top-k) of one shopper, and the
   whole engine (history, encoding, forward, filters, response objects) for one request.
3. `bentoml serve` (serving/process.py) and, in its own process, locust headless at each concurrency:
   closed-loop users on loopback, statistics reset once all users run. Prints a markdown table; --json
   writes the figures.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def shopper_bodies(encoder, n: int, seed: int = 0) -> list[dict]:
    """Shoppers like real traffic: Zipf-popular products, mostly views, some carts and purchases,
    histories of 5 to 80 events (the model reads the latest 50), a few filters."""
    rng = np.random.default_rng(seed)
    tokens = encoder.products.tokens
    categories = encoder.categories.decode(encoder.product_category)
    brands = encoder.brands.decode(encoder.product_brand)
    now = datetime.now(UTC)
    bodies = []
    for i in range(n):
        length = int(rng.integers(5, 81))
        product_ids = np.minimum(rng.zipf(1.3, length), len(tokens)) + 1  # ids >= 2
        gaps = np.cumsum(rng.exponential(90.0, length))[::-1]
        events = [{"ts": (now - timedelta(seconds=float(g))).isoformat(), "session_id": f"s{i}",
                   "event_type": str(rng.choice(["view", "cart", "purchase"], p=[0.85, 0.12, 0.03])),
                   "product_id": tokens[p - 2], "category": categories[p], "brand": brands[p],
                   "price": round(float(rng.lognormal(3.0, 1.0)), 2)} for p, g in zip(product_ids, gaps)]
        filters = {"exclude_purchased": True} if i % 3 == 0 else {}
        bodies.append({"user_id": f"u{i}", "events": events, "k": 10, "filters": filters})
    return bodies


def in_process_ms(bundle: Path, bodies: list[dict], threads: int, repeats: int = 300) -> dict[str, float]:
    """p50/p99 of the raw forward (+ top-k) for one shopper, and of the engine for one request."""
    import torch

    from benchmarks.serving.compile_check import ServedForward, latencies_ms
    from models.encoding import FEATURES
    from serving.engine import SignalsEngine
    from serving.api_types import ModelIdentity, ShopperRequest
    from serving.segments import load_rules
    from serving.settings import DEFAULT_SEGMENTS_CONFIG

    torch.set_num_threads(threads)
    engine = SignalsEngine.from_bundle(bundle, ModelIdentity(name="bench", version=None, run_id=None),
                                       load_rules(DEFAULT_SEGMENTS_CONFIG))
    served_forward = ServedForward(engine.predictor).eval()
    features = torch.ones(len(FEATURES), 1, engine.window, dtype=torch.long)  # (F, 1, L): one full window

    @torch.inference_mode()
    def forward() -> None:
        served_forward(features, torch.zeros(1))

    requests = [ShopperRequest.model_validate(b) for b in bodies]
    now = [datetime.now(UTC)]

    def timed(fn) -> np.ndarray:
        return latencies_ms(fn, repeats, warmup=min(20, repeats))

    raw = timed(forward)
    shoppers = itertools.cycle(requests)
    engine_ms = timed(lambda: engine.predict([next(shoppers)], now))
    batch32 = timed(lambda: engine.predict(requests[:32], now * 32))
    return {"forward_p50_ms": float(np.median(raw)), "forward_p99_ms": float(np.percentile(raw, 99)),
            "engine_p50_ms": float(np.median(engine_ms)), "engine_p99_ms": float(np.percentile(engine_ms, 99)),
            "engine_batch32_p50_ms": float(np.median(batch32))}


def locust(url: str, users: int, duration_s: int, bodies_path: Path, out_dir: Path) -> dict[str, float]:
    prefix = out_dir / f"locust_{users}"
    command = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless", "--host", url,
               "-u", str(users), "-r", str(users), "-t", f"{duration_s}s", "--reset-stats", "--only-summary",
               "--csv", str(prefix), "--loglevel", "WARNING"]
    subprocess.run(command, env={**os.environ, "SIGNALS_BENCH_BODIES": str(bodies_path)}, check=False,
                   stdout=subprocess.DEVNULL)
    with open(f"{prefix}_stats.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return {"users": users, "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
            "rps": float(row["Requests/s"]), "p50_ms": float(row["50%"]), "p99_ms": float(row["99%"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: build the realistic one)")
    parser.add_argument("--duration", type=int, default=20, help="seconds per concurrency level")
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--env", nargs="*", default=[], metavar="KEY=VALUE", help="server environment, e.g. SIGNALS_MAX_BATCH_SIZE=1")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--products", type=int, default=50_000, help="catalogue of the realistic bundle (without --bundle)")
    parser.add_argument("--repeats", type=int, default=300, help="timed calls per in-process figure")
    args = parser.parse_args()

    from models.bundle import load_bundle
    from serving.process import SERVER_ENV, free_port, start_server, stop_server, wait_until_ready
    from serving.settings import ServingSettings

    if any(key not in os.environ for key in SERVER_ENV):  # in-process figures under the server's environment
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks.serving.run", *sys.argv[1:]],
                  {**SERVER_ENV, **os.environ})

    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        tmp = Path(tmp)
        bundle = args.bundle
        if bundle is None:
            from benchmarks.serving.realistic_bundle import build
            bundle = build(tmp / "bundle", n_products=args.products)
        env = {"SIGNALS_BUNDLE": str(bundle.resolve()), "BENTOML_HOME": str(tmp / "bentoml"),
               **dict(item.split("=", 1) for item in args.env)}
        _, encoder, _ = load_bundle(bundle)
        bodies = shopper_bodies(encoder, 512)
        (tmp / "bodies.json").write_text(json.dumps(bodies))
        threads = ServingSettings.from_env(env).torch_threads
        results = {"in_process": in_process_ms(bundle, bodies, threads, args.repeats), "http": [], "server_env": args.env,
                   "load_average": os.getloadavg()}
        port = free_port()
        proc = start_server(port, env, log_file=tmp / "server.log")
        try:
            wait_until_ready(f"http://127.0.0.1:{port}", timeout_s=180, proc=proc)
            for users in args.users:
                results["http"].append(locust(f"http://127.0.0.1:{port}", users, args.duration, tmp / "bodies.json", tmp))
        finally:
            stop_server(proc)
        results["load_average_after"] = os.getloadavg()
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def markdown(results: dict) -> str:
    ip = results["in_process"]
    lines = [f"in process (1 shopper): forward+top-k p50 {ip['forward_p50_ms']:.2f} ms, p99 {ip['forward_p99_ms']:.2f} ms; "
             f"engine p50 {ip['engine_p50_ms']:.2f} ms, p99 {ip['engine_p99_ms']:.2f} ms; "
             f"engine, batch of 32: {ip['engine_batch32_p50_ms']:.1f} ms",
             "",
             "| clients | requests/s | p50 ms | p99 ms | errors | p50 / forward p50 | p50 / engine p50 |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["http"]:
        lines.append(f"| {r['users']} | {r['rps']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
                     f"{r['failures']} / {r['requests']} | {r['p50_ms'] / ip['forward_p50_ms']:.1f} | "
                     f"{r['p50_ms'] / ip['engine_p50_ms']:.1f} |")
    lines.append(f"\nload average before / after: {results['load_average'][0]:.2f} / {results['load_average_after'][0]:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
