"""Peak memory of the streaming (out-of-core) data path as the data grows: 5M, 10M, 20M events.

    python benchmarks/training/streaming_memory.py --source DIR_WITH_20M_EVENTS --work /tmp/stream-mem
    python benchmarks/training/streaming_memory.py --simulate 20000000 --work /tmp/stream-mem   # simulate first
    python benchmarks/training/streaming_memory.py --simulate 20000 --sizes 10000 20000 --in-memory-max 20000 \
        --train-batches 2 --eval --work /tmp/stream-mem-smoke                                   # seconds: a smoke run

The sizes are prefixes of one simulated file (the first customers whose events reach N: the file is
sorted by user), so the data grows by customers over the same 60 days and the same catalogue.
For each size, phases run in their own subprocess, and each reports its own peak RSS (ru_maxrss):
- `repartition`: user-hash repartitioning (auto K = one partition per 1M events);
- `stream`: `prepare_streaming` (split dates from the manifest, the encoder from one streamed pass
  over the training window), then every TRAIN window of every partition through a DataLoader
  (num_workers=0, so one process holds everything), `--train-batches` optimizer steps of a tiny
  SignalsModule (d_model 16, sampled softmax) on them, and with `--eval` the streamed TEST
  evaluation (`evaluate_streaming`) over every partition;
- `in-memory` (only at `--in-memory-max` events or fewer): `training.training_data.prepare` as it is, and the
  same pass over its TRAIN windows, for contrast.
Exits 1 when a phase failed (its row says ERROR), after printing every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))


def gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def prefix(source: Path, out: Path, n_events: int) -> int:
    """The first customers of `source` (sorted by user) whose events reach n_events; streamed."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if (out / "events.parquet").is_file():
        return pq.ParquetFile(out / "events.parquet").metadata.num_rows
    out.mkdir(parents=True, exist_ok=True)
    pf = pq.ParquetFile(source / "events.parquet")
    written, last_user = 0, None
    with pq.ParquetWriter(out / "events.parquet.tmp", pf.schema_arrow) as w:
        for batch in pf.iter_batches(batch_size=1 << 19):
            if written >= n_events:
                # finish the customer at the cut, then stop
                keep = pc.equal(batch.column("user_id"), last_user)
                batch = batch.filter(keep)
                if batch.num_rows == 0:
                    break
            elif written + batch.num_rows > n_events:
                cut_user = batch.column("user_id")[n_events - written - 1]
                batch = batch.filter(pc.less_equal(batch.column("user_id"), cut_user))
                last_user = cut_user
            w.write_batch(batch)
            written += batch.num_rows
            if last_user is None and written >= n_events:
                last_user = batch.column("user_id")[batch.num_rows - 1]
    (out / "events.parquet.tmp").rename(out / "events.parquet")
    # The simulator's summary marks the prefix a finished table (training refuses one without a marker).
    shutil.copy(source / "simulation.json", out / "simulation.json")
    return written


def config(data: Path, work: Path, streaming: bool):
    from events.config_io import load_config
    from training.config import TrainRunConfig

    return load_config(TrainRunConfig, None, [
        f"data.path={data}", f"data.streaming={str(streaming).lower()}", f"data.partition_dir={work / 'partitions'}",
        "model.d_model=16", "train.next_loss=sampled", "train.n_negatives=256", "train.batch_size=256",
        f"output_dir={work / 'runs'}"])


def phase_repartition(data: Path, work: Path) -> dict:
    from events.partitions import auto_partitions, count_rows, repartition
    from training.streaming.prepare import partition_sources

    cfg = config(data, work, True)
    _, _, sources, _, _ = partition_sources(cfg)
    k = auto_partitions(count_rows([Path(s.path) for s in sources]), cfg.data.partition_events)
    shutil.rmtree(work / "partitions", ignore_errors=True)  # measure a real repartitioning, not a reuse
    t = time.perf_counter()
    m = repartition(sources, work / "partitions", k)
    return {"partitions": k, "events": m.n_rows, "seconds": time.perf_counter() - t}


def phase_stream(data: Path, work: Path, train_batches: int, evaluate: bool) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from events.config_io import to_dict
    from training.labels import TRAIN
    from training.module import SignalsModule
    from training.streaming.prepare import prepare_streaming
    from training.streaming.streamed_test import evaluate_streaming
    from training.windows import collate

    torch.manual_seed(0)
    cfg = config(data, work, True)
    out: dict = {}
    t = time.perf_counter()
    s = prepare_streaming(cfg)
    out |= {"prepare_s": time.perf_counter() - t, "rss_after_prepare_gib": gib(), "partitions": len(s.ctx.files),
            "products": len(s.encoder.products)}
    module = SignalsModule(s.model_cfg.to_dict(), to_dict(cfg.train),
                           torch.from_numpy(s.log_popularity()))
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    t = time.perf_counter()
    windows = events = steps = 0
    for batch in DataLoader(s.datasets[TRAIN], batch_size=None, collate_fn=collate):
        windows += batch["product"].shape[0]
        events += int((batch["product"] > 0).sum())
        if steps < train_batches:
            loss = module.train_loss(batch)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
    out |= {"train_windows": windows, "train_window_events": events, "train_steps": steps,
            "epoch_s": time.perf_counter() - t, "rss_after_epoch_gib": gib()}
    if evaluate:
        t = time.perf_counter()
        metrics = evaluate_streaming(module.model, s.ctx).metrics()
        out |= {"eval_s": time.perf_counter() - t, "test_next_n": metrics.get("next_n"),
                "test_intent_n": metrics.get("intent_n"), "rss_after_eval_gib": gib()}
    return out


def phase_in_memory(data: Path, work: Path) -> dict:
    from torch.utils.data import DataLoader

    from training.labels import TRAIN
    from training.training_data import prepare
    from training.windows import collate

    cfg = config(data, work, False)
    t = time.perf_counter()
    p = prepare(cfg)
    out = {"prepare_s": time.perf_counter() - t, "rss_after_prepare_gib": gib()}
    windows = sum(b["product"].shape[0] for b in DataLoader(p.datasets[TRAIN], batch_size=256, collate_fn=collate))
    return out | {"train_windows": windows}


def child(args) -> int:
    t = time.perf_counter()
    if args.phase == "repartition":
        res = phase_repartition(args.data, args.work)
    elif args.phase == "stream":
        res = phase_stream(args.data, args.work, args.train_batches, args.eval)
    else:
        res = phase_in_memory(args.data, args.work)
    res |= {"phase": args.phase, "wall_s": time.perf_counter() - t, "peak_rss_gib": gib()}
    print("RESULT " + json.dumps(res), flush=True)
    return 0


def run_phase(phase: str, data: Path, work: Path, train_batches: int, evaluate: bool) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--data", str(data), "--work", str(work),
           "--train-batches", str(train_batches)] + (["--eval"] if evaluate else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, "PYTHONHASHSEED": "0"})
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        return {"phase": phase, "error": (proc.stderr or proc.stdout)[-800:]}
    return json.loads(line[-1][len("RESULT "):])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", type=Path, help="folder with the largest events.parquet (sorted by user)")
    p.add_argument("--simulate", type=int, help="simulate this many events into WORK/source first")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--work", type=Path, default=Path("/tmp/streaming-memory"))
    p.add_argument("--sizes", type=int, nargs="+", default=[5_000_000, 10_000_000, 20_000_000])
    p.add_argument("--in-memory-max", type=int, default=5_000_000)
    p.add_argument("--train-batches", type=int, default=50)
    p.add_argument("--phases", nargs="+", default=["repartition", "stream", "in-memory"])
    p.add_argument("--eval", action="store_true", help="also run the streamed TEST evaluation (slow on CPU)")
    p.add_argument("--json", type=Path)
    p.add_argument("--phase", choices=["repartition", "stream", "in-memory"], help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.phase:
        return child(args)
    source = args.source
    if source is None:
        source = args.work / "source"
        if not (source / "events.parquet").is_file():
            from events.simulator import load_simulator_config, simulate

            simulate(load_simulator_config(None, [f"seed={args.seed}"]), source, target_events=args.simulate or max(args.sizes))
    rows = []
    for n in args.sizes:
        data = args.work / f"events-{n}"
        n_rows = prefix(source, data, n)
        size_work = args.work / f"work-{n}"
        phases = ["repartition", "stream"] + (["in-memory"] if n <= args.in_memory_max else [])
        for phase in [ph for ph in phases if ph in args.phases]:
            r = run_phase(phase, data, size_work, args.train_batches, args.eval)
            r["events"] = n_rows
            rows.append(r)
            print(json.dumps(r), flush=True)
    print(f"\n{'events':>11s} {'phase':12s} {'peak RSS GiB':>12s} {'wall s':>7s}  notes")
    for r in rows:
        note = (f"K={r.get('partitions')}, {r.get('train_windows', 0):,} train windows, "
                f"{r.get('train_steps', 0)} steps" if r["phase"] == "stream" else
                f"K={r.get('partitions')}" if r["phase"] == "repartition" else
                f"{r.get('train_windows', 0):,} train windows")
        if "error" in r:
            note = "ERROR " + r["error"][-200:].replace("\n", " ")
        print(f"{r['events']:>11,d} {r['phase']:12s} {r.get('peak_rss_gib', float('nan')):12.2f} "
              f"{r.get('wall_s', float('nan')):7.0f}  {note}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
