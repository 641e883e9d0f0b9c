"""Training-batch loading speed: windows/s and events/s of the in-memory DataLoader.

    .venv/bin/python benchmarks/training/loader.py --events 1000000 --workers 0 2 --batches 200

Data: `training.training_data.prepare` on the simulated dataset of `--events` events (the run's own split,
labels and encoder). Two ways to build a batch of B windows, through the same DataLoader settings
as `training.lightning_fit.fit` (shuffled, `collate`, workers):
- `gathered`: `WindowDataset.__getitems__`, the whole batch with array indexing (what training uses);
- `per-window`: B single `__getitem__` calls stacked by `collate` (the DataLoader's default path,
  forced by hiding `__getitems__`), i.e. per-window Python as before the batched gather.
events/s counts real (non-padding) events. The figure to compare with the GPU step's events/s is
`gathered` at the worker count of the GPU machine.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from events.config_io import load_config  # noqa: E402
from training.config import TrainRunConfig  # noqa: E402
from training.labels import TRAIN  # noqa: E402
from training.training_data import prepare  # noqa: E402
from training.windows import WindowDataset, collate  # noqa: E402


class PerWindow(Dataset):
    """The same windows without `__getitems__`: the DataLoader fetches them one by one."""

    def __init__(self, ds: WindowDataset):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.ds[i]


def measure(dataset: Dataset, batch: int, workers: int, batches: int, seed: int) -> dict:
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, collate_fn=collate, num_workers=workers,
                        generator=torch.Generator().manual_seed(seed), persistent_workers=False)
    it = iter(loader)
    next(it)  # workers started, first batch out of the way
    windows = events = 0
    t = time.perf_counter()
    for _ in range(batches):
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        windows += b["product"].shape[0]
        events += int((b["product"] > 0).sum())
    secs = time.perf_counter() - t
    return {"windows_per_s": windows / secs, "events_per_s": events / secs, "seconds": secs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000, help="simulated events (data.simulate_events)")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--batches", type=int, default=200, help="batches timed per case")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    cfg = load_config(TrainRunConfig, None, [f"data.simulate_events={args.events}"])
    ds = prepare(cfg).datasets[TRAIN]
    print(f"# {len(ds):,} training windows of up to {ds.window} events; batch {args.batch}", flush=True)
    results = []
    for workers in args.workers:
        for name, dataset in (("gathered", ds), ("per-window", PerWindow(ds))):
            runs = [measure(dataset, args.batch, workers, args.batches, seed) for seed in range(args.repeats)]
            mid = sorted(runs, key=lambda r: r["events_per_s"])[len(runs) // 2]
            results.append({"path": name, "workers": workers, "batch": args.batch, **mid})
            print(json.dumps(results[-1]), flush=True)
    print(f"\n{'path':11s} {'workers':>7s} {'windows/s':>11s} {'events/s':>12s}   (median of {args.repeats})")
    for r in results:
        print(f"{r['path']:11s} {r['workers']:7d} {r['windows_per_s']:11,.0f} {r['events_per_s']:12,.0f}")
    for workers in args.workers:
        g, w = (next(r for r in results if r["path"] == n and r["workers"] == workers) for n in ("gathered", "per-window"))
        print(f"gathered / per-window at {workers} workers: {g['events_per_s'] / w['events_per_s']:.1f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
