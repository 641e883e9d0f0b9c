"""Each training process writes what it trained: proof, under DDP, that every rank did its share."""
from __future__ import annotations

import json
from pathlib import Path

import lightning as L


class RankReport(L.Callback):
    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.batches = 0
        self.windows = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches += 1
        self.windows += int(batch["product"].shape[0])

    def on_fit_end(self, trainer, pl_module) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        report = {"global_rank": trainer.global_rank, "world_size": trainer.world_size,
                  "train_batches": self.batches, "train_windows": self.windows}
        (self.out_dir / f"rank-{trainer.global_rank}.json").write_text(json.dumps(report))
