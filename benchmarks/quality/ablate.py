"""Ablation runner: one prepared dataset, several recipes x seeds, validation AND test metrics per run.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quality/ablate.py \\
        --name base --seeds 1 2 3 [--config configs/default.yaml] [--set key=value ...]

No MLflow: `training.in_memory.prepare_in_memory` + `fit` (the same code `signals train` runs) with logger=False,
then the best-validation-epoch model predicts the VAL and the TEST points. Recipes are chosen on the
VAL columns only; TEST is reported beside them. Baselines and the oracle are scored once per dataset
(test points) and cached in results/<dataset>-baselines.json. One JSON line per run is appended to
results/ablation.jsonl.
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Timer
import numpy as np
import torch

from events.config_io import load_config
from training.config import TrainRunConfig
from training.in_memory import prepare_in_memory
from training.labels import TEST, VAL
from training.lightning_fit import fit
from training.metrics import binary_metrics, next_metrics
from training.window_predictions import predict

HERE = Path(__file__).resolve().parent
PRIMARY = ("intent_pr_auc", "churn_pr_auc", "next_recall_at_20", "next_mrr_at_20")
EXTRA = ("intent_roc_auc", "churn_roc_auc")


def split_points(labels, encoder, split: int):
    """(intent rows, y), (churn keys, y), next rows of one split: the EvalPoints rule for any split."""
    from training.baselines.next_item import next_query_rows

    intent_rows = np.flatnonzero((labels.intent_split == split) & (labels.intent >= 0))
    churn_keys = labels.churn.index[labels.churn["split"] == split].to_numpy()
    return (intent_rows, labels.intent[intent_rows].astype(np.int64),
            churn_keys, labels.churn.loc[churn_keys, "label"].to_numpy(dtype=np.int64),
            next_query_rows(labels, encoder, split))


def score(pred, points) -> dict[str, float]:
    intent_rows, intent_y, churn_keys, churn_y, next_rows = points
    m: dict[str, float] = {}
    if pred.intent is not None and len(intent_rows):
        m |= binary_metrics("intent", intent_y, pred.intent.reindex(intent_rows).to_numpy())
    if pred.churn is not None and len(churn_keys):
        m |= binary_metrics("churn", churn_y, pred.churn.reindex(churn_keys).to_numpy())
    if pred.next_rank is not None and len(next_rows):
        ranks = pred.next_rank.reindex(next_rows).to_numpy() if hasattr(pred.next_rank, "reindex") else pred.next_rank
        m |= next_metrics(np.asarray(ranks))
    return {k: v for k, v in m.items() if k in PRIMARY + EXTRA}


class Curves(L.Callback):
    """Validation metrics after every epoch: where each task peaks (val_score mixes them)."""

    def __init__(self):
        self.rows: list[dict[str, float]] = []

    def on_validation_end(self, trainer, module) -> None:  # after the epoch's metrics are logged, as EarlyStopping
        m = trainer.callback_metrics
        self.rows.append({k.removeprefix("val_"): round(float(m[k]), 4) for k in
                          ("val_intent_pr_auc", "val_churn_pr_auc", "val_next_mrr_at_20", "val_score") if k in m})


class _P:  # baseline predictions in the shape `score` reads
    def __init__(self, intent=None, churn=None, next_rank=None):
        self.intent, self.churn, self.next_rank = intent, churn, next_rank


def baselines(cfg: TrainRunConfig, p, test_points, path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    from training.baselines import fit_predict_churn, fit_predict_intent, vsknn_ranks
    from training.oracle import oracle_predictions

    labels, bc = p.labels, cfg.baselines
    out = {
        "lightgbm_intent": score(_P(intent=fit_predict_intent(labels, cfg.train.seed)), test_points),
        "rfm_logreg_churn": score(_P(churn=fit_predict_churn(labels, cfg.labels.churn_lookback_days, cfg.train.seed)),
                                  test_points),
        "vsknn": score(_P(next_rank=vsknn_ranks(labels, p.encoder, test_points[4], bc.vsknn_neighbours,
                                                bc.vsknn_sample_sessions)), test_points),
    }
    oracle = oracle_predictions(p.source, labels, cfg.labels.churn_horizon_days)
    if oracle is not None:
        out["oracle"] = score(_P(*oracle), test_points)
    path.write_text(json.dumps(out, indent=1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    ap.add_argument("--dataset", default="demo", help="label of the data in the results")
    ap.add_argument("--refit", action="store_true",
                    help="also refit on train + validation for the chosen epoch count (train.refit); test only")
    ap.add_argument("--results", type=Path, default=HERE / "results", help="folder of ablation.jsonl")
    ap.add_argument("--no-baselines", action="store_true",
                    help="skip the baselines and the oracle (another process scores them on the same data)")
    ap.add_argument("--baselines-only", action="store_true", help="score the baselines and the oracle, train nothing")
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="stop each training after this many minutes (Lightning's Timer; the best epoch so far "
                         "is kept and the row records it); 0 = no limit")
    args = ap.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    args.results.mkdir(parents=True, exist_ok=True)
    base_cfg = load_config(TrainRunConfig, args.config, [*args.overrides, "train.progress_bar=false"])
    p = prepare_in_memory(base_cfg)
    val_points, test_points = split_points(p.labels, p.encoder, VAL), split_points(p.labels, p.encoder, TEST)
    if not args.no_baselines:
        print("baselines (test):", json.dumps(baselines(base_cfg, p, test_points,
                                                        args.results / f"{args.dataset}-baselines.json")), flush=True)
    # The refit's comparison is refit too: the baselines learn from the same merged window (as in `signals train`).
    merged = p.for_refit() if args.refit else None
    if merged is not None and not args.no_baselines:
        print("baselines refit on train + validation (test):", json.dumps(baselines(
            base_cfg, merged, test_points, args.results / f"{args.dataset}-refit-baselines.json")), flush=True)
    if args.baselines_only:
        return
    log_pop = torch.from_numpy(p.log_popularity())
    for seed in args.seeds:
        cfg = load_config(TrainRunConfig, args.config, [*args.overrides, "train.progress_bar=false", f"train.seed={seed}"])
        L.seed_everything(seed, workers=True)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            curves = Curves()
            timer = [Timer(duration=timedelta(minutes=args.max_minutes))] if args.max_minutes else []
            module, _ = fit(cfg, p, log_pop, logger=False, ckpt_dir=Path(tmp) / "ckpt", callbacks=[curves, *timer])
            best_epoch = module.epochs_trained - 1
        epochs = module.trainer.current_epoch if module._trainer is not None else -1
        model = module.model.cpu().eval()
        row = {"name": args.name, "dataset": args.dataset, "seed": seed, "overrides": args.overrides,
               "epochs_run": epochs, "best_epoch": best_epoch, "minutes": round((time.perf_counter() - t0) / 60, 2),
               "val": score(predict(model, p.datasets[VAL]), val_points),
               "test": score(predict(model, p.datasets[TEST]), test_points), "curves": curves.rows}
        if merged is not None and best_epoch >= 0:
            L.seed_everything(seed, workers=True)
            with tempfile.TemporaryDirectory() as tmp:
                refitted, _ = fit(cfg, merged, torch.from_numpy(merged.log_popularity()), logger=False,
                                  ckpt_dir=Path(tmp) / "ckpt", callbacks=None, epochs=best_epoch + 1)
            row["test_refit"] = score(predict(refitted.model.cpu().eval(), merged.datasets[TEST]), test_points)
        print(json.dumps(row), flush=True)
        with open(args.results / "ablation.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
