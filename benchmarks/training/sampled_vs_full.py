"""Sampled softmax (log-Q corrected, shared negatives + recent products) against the full softmax.

    python benchmarks/training/sampled_vs_full.py --device cuda --events 2000000 --products 100000 --seeds 5 6
    python benchmarks/training/sampled_vs_full.py --eval-check            # 1,000,000-product ranking on CPU

Simulated data (same seed), one `training.training_data.prepare`, then for each loss and seed one
`training.lightning_fit.fit` (the production training: SignalsModule, early stopping on validation, the best
epoch restored) with only `train.next_loss` / `train.n_negatives` / `train.seed` changed. The model is
evaluated on TEST with `training.window_predictions.predict`: Recall@20 and MRR@20 of the next product over the
whole catalogue, pessimistic ties, targets unseen in training dropped (as in `training.comparison`).
Relative loss = 1 - sampled / full, per seed and of the means over seeds.

`--eval-check` ranks N queries against 1,000,000 products with `models.ranking.chunked_ranks` and
reports the process's peak RSS beside the (N x P) matrix a non-chunked evaluation would need.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

import lightning as L  # noqa: E402

from models.network import ModelConfig, SessionSignalsModel  # noqa: E402
from models.ranking import chunked_ranks, rank_metrics  # noqa: E402
from events.config_io import load_config  # noqa: E402
from training.config import TrainRunConfig  # noqa: E402
from training.labels import TEST  # noqa: E402
from training.lightning_fit import fit  # noqa: E402
from training.training_data import prepare  # noqa: E402
from training.window_predictions import predict  # noqa: E402


def simulate(out: Path, events: int, products: int, seed: int) -> Path:
    if not (out / "events.parquet").is_file():
        from events.simulator import load_simulator_config
        from events.simulator import simulate as run

        t = time.perf_counter()
        run(load_simulator_config(None, [f"seed={seed}", f"catalogue.n_products={products}"]), out, target_events=events)
        print(f"# simulated {events:,} events, {products:,} products in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def train_one(cfg: TrainRunConfig, p, log_q: torch.Tensor, device: str) -> dict:
    L.seed_everything(cfg.train.seed, workers=True)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        module, best_val = fit(cfg, p, log_q, logger=False, ckpt_dir=Path(tmp) / "checkpoints", callbacks=None)
    train_s = time.perf_counter() - t
    ranks = torch.as_tensor(predict(module.model, p.datasets[TEST], batch_size=512, device=device).next_rank.to_numpy())
    tc = cfg.train
    res = {"loss": tc.next_loss, "negatives": tc.n_negatives if tc.next_loss == "sampled" else None, "seed": tc.seed,
           "train_s": train_s, "best_val_score": best_val, "test_points": len(ranks), **rank_metrics(ranks, k=20)}
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
    p.add_argument("--data-seed", type=int, default=5, help="simulator seed")
    p.add_argument("--seeds", type=int, nargs="+", default=[5], help="training seeds; each loss is trained once per seed")
    p.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "generated" / "sampled-vs-full")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--encoder", default="gru")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--negatives", type=int, nargs="+", default=[8192])
    p.add_argument("--no-compile", dest="compile", action="store_false", help="eager step on the GPU too")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more TrainRunConfig overrides")
    p.add_argument("--sampled-only", action="store_true", help="skip the full softmax (exploring settings)")
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
    torch.set_float32_matmul_precision("high")
    data = simulate(args.data / f"sim-{args.events}-p{args.products}-seed{args.data_seed}", args.events, args.products,
                    args.data_seed)
    gpu = args.device == "cuda"
    cfg = load_config(TrainRunConfig, None, [
        f"data.path={data}", f"model.encoder={args.encoder}", f"model.d_model={args.d_model}",
        f"model.n_layers={1 if args.encoder == 'gru' else 2}", f"train.max_epochs={args.epochs}",
        f"train.batch_size={args.batch}", f"train.lr={args.lr}", f"train.num_workers={args.workers}",
        f"train.accelerator={'gpu' if gpu else 'cpu'}", f"train.precision={'bf16-mixed' if gpu else '32-true'}",
        f"train.compile={gpu and args.compile}", "train.progress_bar=false", *args.set])
    prepared = prepare(cfg)
    log_q = torch.from_numpy(prepared.log_popularity())
    results = []
    for seed in args.seeds:
        full = [] if args.sampled_only else [("full", cfg.train.n_negatives)]
        for loss, negatives in full + [("sampled", n) for n in args.negatives]:
            run_cfg = replace(cfg, train=replace(cfg.train, next_loss=loss, n_negatives=negatives, seed=seed))
            results.append(train_one(run_cfg, prepared, log_q, args.device))

    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1))
    if args.sampled_only:
        return 0

    def mean(loss: str, negatives, key: str) -> float:
        return statistics.mean(r[key] for r in results if r["loss"] == loss and r["negatives"] == negatives)

    print(f"\n{'loss':8s} {'negatives':>9s} {'recall@20':>9s} {'mrr@20':>8s} {'rel. recall':>11s} {'rel. mrr':>9s} "
          f"{'train s':>8s}   (means over seeds {args.seeds})")
    summary = []
    for loss, negatives in [("full", None)] + [("sampled", n) for n in args.negatives]:
        row = {k: mean(loss, negatives, k) for k in ("recall@20", "mrr@20", "train_s")}
        row.update(loss=loss, negatives=negatives,
                   relative_recall_loss=1 - row["recall@20"] / mean("full", None, "recall@20"),
                   relative_mrr_loss=1 - row["mrr@20"] / mean("full", None, "mrr@20"))
        summary.append(row)
        print(f"{loss:8s} {str(negatives or '-'):>9s} {row['recall@20']:9.4f} {row['mrr@20']:8.4f} "
              f"{row['relative_recall_loss']:11.2%} {row['relative_mrr_loss']:9.2%} {row['train_s']:8.1f}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results,
                                         "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
