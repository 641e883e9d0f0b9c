"""One log line per epoch, readable when redirected to a file: epoch, time, losses, validation metrics,
throughput. The progress bar (a terminal only) is a comfort; this line is the record."""
from __future__ import annotations

import logging
import time

import lightning as L

log = logging.getLogger(__name__)

SHOWN = ("train_loss", "val_loss", "val_intent_pr_auc", "val_churn_pr_auc", "val_next_mrr_at_20", "val_score")


class EpochLog(L.Callback):
    def __init__(self, max_epochs: int, monitor: str, mode: str):
        """`mode`: "min" or "max", as early stopping follows `monitor` (`lightning_fit.monitor_mode`)."""
        self.max_epochs, self.monitor, self.mode = max_epochs, monitor, mode
        self.t0 = time.perf_counter()
        self.best: float | None = None

    def state_dict(self) -> dict:
        return {"best": self.best}  # in the checkpoint: "(best so far)" stays right in a resumed run

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict["best"]

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # Validation ran before this hook, so its metrics of this epoch are in callback_metrics.
        if not trainer.is_global_zero:
            return
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        parts = [f"epoch {trainer.current_epoch + 1}/{self.max_epochs}", f"{time.perf_counter() - self.t0:.1f} s"]
        parts += [f"{k} {m[k]:.4f}" for k in SHOWN if k in m]
        if "events_per_s_epoch" in m:
            parts.append(f"{m['events_per_s_epoch']:,.0f} events/s")
        score = m.get(self.monitor)
        if score is not None:
            better = self.best is None or (score < self.best if self.mode == "min" else score > self.best)
            if better:
                self.best = score
                parts.append("(best so far)")
        log.info("  ".join(parts))
