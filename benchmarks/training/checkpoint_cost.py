"""What resuming costs per epoch: the time spent writing checkpoints during a fit of the demo config.

    OMP_NUM_THREADS=1 python benchmarks/training/checkpoint_cost.py --epochs 3

Runs `training.lightning_fit.fit` on configs/default.yaml (the embedded simulated shop, `make demo`'s data)
and times every checkpoint write (`training.checkpoints.AtomicCheckpointIO`, fsync included): `last.ckpt`,
written after every epoch for resuming, apart from the best epoch's file, which the fit wrote before
resuming existed. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from events.config_io import load_config
from training import checkpoints
from training.config import TrainRunConfig
from training.lightning_fit import fit
from training.training_data import prepare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    writes: list[tuple[str, float, int]] = []
    save = checkpoints.AtomicCheckpointIO.save_checkpoint

    def timed(self, checkpoint, path, storage_options=None):
        t0 = time.perf_counter()
        save(self, checkpoint, path, storage_options)
        writes.append((Path(path).name, time.perf_counter() - t0, Path(path).stat().st_size))

    checkpoints.AtomicCheckpointIO.save_checkpoint = timed
    cfg = load_config(TrainRunConfig, REPO_ROOT / "configs" / "default.yaml",
                      [f"train.max_epochs={args.epochs}", "train.progress_bar=false"])
    data = prepare(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fit(cfg, data, torch.from_numpy(data.log_popularity()), False, Path(tmp), None)
        fit_s = time.perf_counter() - t0
    last = [s for name, s, _ in writes if name == "last.ckpt"]
    best = [s for name, s, _ in writes if name != "last.ckpt"]
    print(json.dumps({"epochs": args.epochs, "fit_s": round(fit_s, 1), "epoch_s": round(fit_s / args.epochs, 1),
                      "last_ckpt_mb": round(writes[-1][2] / 1e6, 1), "last_ckpt_s_per_epoch": round(sum(last) / len(last), 3),
                      "best_ckpt_s_per_write": round(sum(best) / max(len(best), 1), 3),
                      "last_ckpt_share_of_fit": round(sum(last) / fit_s, 4)}))


if __name__ == "__main__":
    main()
