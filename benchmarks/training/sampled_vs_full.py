"""Sampled softmax (log-Q corrected, shared negatives) against the full softmax on the same data.

    python benchmarks/training/sampled_vs_full.py --device cuda --events 3000000 --products 100000
    python benchmarks/training/sampled_vs_full.py --eval-check            # 1,000,000-product ranking on CPU

Simulated data (same seed), one in-memory preparation (exactly `training.train.prepare`'s steps), then
one Lightning training per loss with the same seed, the same epochs and the same everything else
(`SignalsModule`, the production loss code); the model of the last epoch is evaluated on the TEST
split: Recall@20 and MRR@20 of the next product over the whole catalogue, pessimistic ties, targets
unseen in training dropped (as in `training.comparison`). Relative loss = 1 - sampled / full.

It does not call `training.train.train` (MLflow is not installed on the GPU machine, and baselines are
irrelevant here); it calls the same pieces. `--eval-check` ranks N queries against 1,000,000 products
with `models.ranking.chunked_ranks` and reports the process's peak RSS beside the (N x P) matrix a
non-chunked evaluation would need.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

import lightning as L  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from models.encoding import EventEncoder  # noqa: E402
from models.network import ModelConfig, SessionSignalsModel, feature_batch, recent_products  # noqa: E402
from models.ranking import chunked_ranks, rank_metrics  # noqa: E402
from training.config import LabelConfig, ModelSection, SplitConfig  # noqa: E402
from training.config_io import to_dict  # noqa: E402
from training.labels import TEST, TRAIN, VAL, make_labels, naive_utc, split_dates  # noqa: E402
from training.module import SignalsModule  # noqa: E402
from training.windows import WindowDataset, build_split, collate  # noqa: E402


def simulate(out: Path, events: int, products: int, seed: int) -> Path:
    if not (out / "events.parquet").is_file():
        from training.simulator import load_simulator_config
        from training.simulator import simulate as run

        t = time.perf_counter()
        run(load_simulator_config(None, [f"seed={seed}", f"catalogue.n_products={products}"]), out, target_events=events)
        print(f"# simulated {events:,} events, {products:,} products in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def popularity_log_prob(encoder: EventEncoder, train_window: pd.DataFrame) -> np.ndarray:
    """training.train.popularity_log_prob (copied: training.train imports MLflow)."""
    counts = np.bincount(encoder.products.encode(train_window["product_id"]), minlength=len(encoder.products))
    counts = counts.astype(np.float64) + 1e-3
    counts[:2] = 0.0
    with np.errstate(divide="ignore"):
        log_p = np.log(counts / counts.sum())
    return np.where(np.isfinite(log_p), log_p, -1e9)


def prepare(path: Path, model: ModelSection, split: SplitConfig, labels_cfg: LabelConfig):
    """training.train.prepare's steps, in memory."""
    t = time.perf_counter()
    events = pd.read_parquet(path / "events.parquet")
    dates = split_dates(events, split)
    labels = make_labels(events, dates, labels_cfg)
    train_window = labels.events[naive_utc(labels.events["ts"]) < np.datetime64(dates.val_start.tz_localize(None), "us")]
    encoder = EventEncoder.fit(train_window, min_count=labels_cfg.min_count)
    encoded = encoder.encode(labels.events)
    datasets = {s: WindowDataset(build_split(labels, encoded, s, model.max_len), model.max_len) for s in (TRAIN, VAL, TEST)}
    model_cfg = ModelConfig(**encoder.sizes(), **to_dict(model))
    log_q = torch.from_numpy(popularity_log_prob(encoder, train_window))
    print(f"# prepared {len(events):,} events in {time.perf_counter() - t:.0f} s: windows train "
          f"{len(datasets[TRAIN]):,} val {len(datasets[VAL]):,} test {len(datasets[TEST]):,}; "
          f"catalogue {len(encoder.products):,}", flush=True)
    return datasets, model_cfg, log_q, encoder


@torch.inference_mode()
def next_ranks(model: SessionSignalsModel, dataset: WindowDataset, device: torch.device, workers: int) -> torch.Tensor:
    """Ranks of every known next-product target of the split (training.predict's selection), on `device`."""
    model.to(device).eval()
    out = []
    for batch in DataLoader(dataset, batch_size=512, collate_fn=collate, num_workers=workers):
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        h = model.encode(feature_batch(batch))
        mask = batch["next_product"] >= 2
        history = recent_products(batch["product"], model.cfg.history)[mask]  # (N, K), as training.predict
        out.append(chunked_ranks(model.product_logits, h[mask], history, batch["next_product"][mask],
                                 model.cfg.n_products, max_cells=1 << 28 if device.type == "cuda" else 1 << 25).cpu())
    return torch.cat(out)


def train_one(loss: str, negatives: int, args, datasets, model_cfg: ModelConfig, log_q: torch.Tensor,
              encoder: EventEncoder) -> dict:
    L.seed_everything(args.seed, workers=True)
    tc = dict(max_epochs=args.epochs, batch_size=args.batch, lr=args.lr, next_loss=loss, n_negatives=negatives,
              seed=args.seed, accelerator="gpu" if args.device == "cuda" else "cpu", precision=args.precision)
    module = SignalsModule(model_cfg.to_dict(), tc, log_q)
    module.model.set_catalogue(torch.from_numpy(encoder.product_category), torch.from_numpy(encoder.product_brand))  # as fit()
    loader = DataLoader(datasets[TRAIN], batch_size=args.batch, shuffle=True, collate_fn=collate,
                        num_workers=args.workers, pin_memory=args.device == "cuda", persistent_workers=args.workers > 0,
                        generator=torch.Generator().manual_seed(args.seed))
    trainer = L.Trainer(max_epochs=args.epochs, accelerator=tc["accelerator"], devices=1, precision=args.precision,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    t = time.perf_counter()
    trainer.fit(module, loader)
    train_s = time.perf_counter() - t
    ranks = next_ranks(module.model, datasets[TEST], torch.device(args.device), args.workers)
    m = rank_metrics(ranks, k=20)
    res = {"loss": loss, "negatives": negatives if loss == "sampled" else None, "epochs": args.epochs,
           "train_s": train_s, "test_points": len(ranks), **m}
    print(json.dumps(res), flush=True)
    return res


def eval_check(n_products: int, n_queries: int, d: int) -> dict:
    """Rank n_queries against n_products with the model's chunked path; peak RSS vs the full (N x P) matrix."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    torch.manual_seed(0)
    cfg = ModelConfig(n_products=n_products, n_categories=200, n_brands=400, n_event_types=6, n_price_buckets=19,
                      n_gap_buckets=22, d_model=d)
    model = SessionSignalsModel(cfg).eval()
    after_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    h = torch.randn(n_queries, d)
    target = torch.randint(2, n_products, (n_queries,))
    history = torch.randint(0, n_products, (n_queries, cfg.history))
    t = time.perf_counter()
    with torch.inference_mode():
        ranks = chunked_ranks(model.product_logits, h, history, target, n_products)
    secs = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    res = {"products": n_products, "queries": n_queries, "d_model": d, "seconds": secs,
           "peak_rss_gib": peak, "rss_before_gib": before, "rss_with_model_gib": after_model,
           "full_matrix_gib": n_queries * n_products * 4 / 2**30, "ranks_ok": bool(((ranks >= 1) & (ranks <= n_products)).all())}
    print(json.dumps(res), flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--events", type=int, default=3_000_000)
    p.add_argument("--products", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "generated" / "sampled-vs-full")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--encoder", default="gru")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--negatives", type=int, nargs="+", default=[512, 2048, 8192])
    p.add_argument("--precision", default=None, help="default: bf16-mixed on cuda, 32-true on cpu")
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--json", type=Path)
    p.add_argument("--eval-check", action="store_true")
    p.add_argument("--eval-products", type=int, default=1_000_000)
    p.add_argument("--eval-queries", type=int, default=20_000)
    args = p.parse_args(argv)
    if args.eval_check:
        res = eval_check(args.eval_products, args.eval_queries, 128)
        if args.json:
            args.json.write_text(json.dumps(res, indent=1))
        return 0
    args.precision = args.precision or ("bf16-mixed" if args.device == "cuda" else "32-true")
    torch.set_float32_matmul_precision("high")
    data = simulate(args.data / f"sim-{args.events}-p{args.products}-seed{args.seed}", args.events, args.products, args.seed)
    model = ModelSection(encoder=args.encoder, d_model=args.d_model, n_layers=1 if args.encoder == "gru" else 2)
    datasets, model_cfg, log_q, encoder = prepare(data, model, SplitConfig(), LabelConfig())
    results = [train_one("full", 0, args, datasets, model_cfg, log_q, encoder)]
    results += [train_one("sampled", n, args, datasets, model_cfg, log_q, encoder) for n in args.negatives]
    full = results[0]
    print(f"\n{'loss':8s} {'negatives':>9s} {'recall@20':>9s} {'mrr@20':>8s} {'rel. recall':>11s} {'rel. mrr':>9s} {'train s':>8s}")
    for r in results:
        r["relative_recall_loss"] = 1 - r["recall@20"] / full["recall@20"]
        r["relative_mrr_loss"] = 1 - r["mrr@20"] / full["mrr@20"]
        print(f"{r['loss']:8s} {str(r['negatives'] or '-'):>9s} {r['recall@20']:9.4f} {r['mrr@20']:8.4f} "
              f"{r['relative_recall_loss']:11.2%} {r['relative_mrr_loss']:9.2%} {r['train_s']:8.1f}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
