"""Training-step throughput of our SessionSignalsModel on synthetic batches (GPU or CPU).

    python -m benchmarks.training.throughput                       # GPU if there is one, else CPU
    python -m benchmarks.training.throughput --device cpu --batch 128 --steps 3 --warmup 1

Model: width 128, window 50; a 2-layer causal Transformer and a 1-layer GRU, the catalogue at
100,000 and 1,000,000 products. Batches: B windows of L real events, every position labelled for
intent and next product (as the reference microbenchmark scores every position), one churn example
per window. events/s = B x L / step time; peak GPU memory from torch.cuda.max_memory_allocated.

Two steps, both on the same SignalsModule (its model, its log Q buffer, its TrainSection weights):
- `module`: `SignalsModule.shared_step(batch)["loss"]` + backward + fused AdamW, in a plain loop under
  bf16 autocast: exactly the production loss code, as Lightning runs it (less Lightning's per-step
  hooks). It has host-device syncs (`mask.any()`, boolean-mask indexing).
- `static`: the same losses written with fixed shapes (masks as weights, masked means), the negatives
  drawn with the same `sample_negatives` outside the compiled region, the loss (encoder + heads)
  compiled with torch.compile. No host-device sync in the step (checked with
  torch.cuda.set_sync_debug_mode("error") on the eager version). `--check` verifies that its loss
  equals `shared_step`'s on the same batch and negatives.
Full softmax is run only where the memory check says it fits; the sampled softmax with
`--negatives` shared negatives (log-Q corrected, training/module.py's default path for large catalogues).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from models.losses import sample_negatives  # noqa: E402
from models.network import feature_batch, recent_products  # noqa: E402
from models.vocab import N_RESERVED  # noqa: E402
from training.module import SignalsModule  # noqa: E402

N_CATEGORIES, N_BRANDS = 2_000, 1_000


def model_cfg(products: int, encoder: str, d: int, window: int) -> dict:
    return dict(n_products=products, n_categories=N_CATEGORIES, n_brands=N_BRANDS, n_event_types=6,
                n_price_buckets=19, n_gap_buckets=22, encoder=encoder, d_model=d,
                n_layers=2 if encoder == "transformer" else 1, n_heads=4, dropout=0.1, max_len=window)


def synthetic_batch(B: int, L: int, products: int, device: torch.device, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ri = lambda lo, hi, shape: torch.randint(lo, hi, shape, generator=g)
    # Zipf-like product popularity, as in real catalogues (matters for the sampled softmax's proposal).
    ranks = torch.arange(1, products - N_RESERVED + 1, dtype=torch.float64)
    pop = 1.0 / ranks
    prod = torch.multinomial(pop, B * (L + 1), replacement=True, generator=g).reshape(B, L + 1) + N_RESERVED
    b = {
        "product": prod[:, :L].contiguous(), "category": ri(2, N_CATEGORIES, (B, L)), "brand": ri(2, N_BRANDS, (B, L)),
        "event_type": ri(1, 6, (B, L)), "price_bucket": ri(1, 19, (B, L)), "gap_bucket": ri(1, 22, (B, L)),
        "new_session": ri(1, 3, (B, L)),
        "intent": ri(0, 2, (B, L)), "next_product": prod[:, 1:].contiguous(),
        "next_category": ri(2, N_CATEGORIES, (B, L)), "next_brand": ri(2, N_BRANDS, (B, L)),
        "event_row": torch.arange(B * L).reshape(B, L),
        "churn_pos": ri(0, L, (B,)), "churn_gap": torch.rand(B, generator=g), "churn_label": ri(0, 2, (B,)).float(),
        "churn_key": torch.arange(B), "churn_batch": torch.arange(B),
    }
    return {k: v.to(device, non_blocking=True) for k, v in b.items()}


def _masked_mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    m = m.to(x.dtype)
    return (x * m).sum() / m.sum().clamp_min(1.0)


def static_loss(module: SignalsModule, batch: dict[str, torch.Tensor], negatives: torch.Tensor | None) -> torch.Tensor:
    """shared_step's weighted loss with fixed shapes: every (b, t) row is computed, masks weight them."""
    model, tc = module.model, module.tc
    h = model.encode(feature_batch(batch))  # (B, L, D)
    B, L, D = h.shape
    hf = h.reshape(B * L, D)
    im = (batch["intent"] >= 0).reshape(-1)
    it = batch["intent"].reshape(-1).clamp_min(0).float()
    intent = _masked_mean(F.binary_cross_entropy_with_logits(model.intent_logit(hf).float(), it, reduction="none"), im)
    hc = h[batch["churn_batch"], batch["churn_pos"]]
    churn = F.binary_cross_entropy_with_logits(model.churn_logit(hc, batch["churn_gap"]).float(), batch["churn_label"])
    nm = (batch["next_product"] >= 2).reshape(-1)
    target = torch.where(nm, batch["next_product"].reshape(-1), torch.full_like(nm, N_RESERVED, dtype=torch.long))
    history = recent_products(batch["product"], model.cfg.history).reshape(B * L, -1)  # (B*L, K)
    if tc.next_loss == "sampled":
        q = model.product_query_vectors(hf)
        log_q = module.log_q
        pos = model.score_products(q, target.unsqueeze(1), history).squeeze(1) - log_q[target]  # (B*L,)
        neg = model.score_products(q, negatives, history) - log_q[negatives]  # (B*L, S)
        neg = neg.masked_fill(negatives.unsqueeze(0) == target.unsqueeze(1), float("-inf"))
        logits = torch.cat([pos.unsqueeze(1), neg], dim=1).float()
        per_row = torch.logsumexp(logits, dim=1) - logits[:, 0]  # cross-entropy with the target in column 0
    else:
        per_row = F.cross_entropy(model.product_logits(hf, history).float(), target, reduction="none")
    nxt = _masked_mean(per_row, nm)
    cat_t = batch["next_category"].reshape(-1).clamp_min(0)
    brand_t = batch["next_brand"].reshape(-1).clamp_min(0)
    aff = _masked_mean(F.cross_entropy(model.category_logits(hf).float(), cat_t, reduction="none"), nm) \
        + _masked_mean(F.cross_entropy(model.brand_logits(hf).float(), brand_t, reduction="none"), nm)
    return tc.intent_weight * intent + tc.churn_weight * churn + tc.next_weight * nxt + tc.affinity_weight * aff


def make_module(products: int, encoder: str, args, loss: str, device: torch.device) -> SignalsModule:
    torch.manual_seed(0)
    ranks = torch.arange(1, products + 1, dtype=torch.float64)
    log_q = torch.log(1.0 / ranks / (1.0 / ranks).sum())
    log_q[:N_RESERVED] = -1e9
    tc = dict(next_loss=loss, n_negatives=args.negatives, batch_size=args.batch, accelerator=device.type)
    module = SignalsModule(model_cfg(products, encoder, args.d_model, args.window), tc, log_q)
    g = torch.Generator().manual_seed(1)
    module.model.set_catalogue(torch.randint(2, N_CATEGORIES, (products,), generator=g),
                               torch.randint(2, N_BRANDS, (products,), generator=g))
    return module.to(device)


def run_case(products: int, encoder: str, loss: str, step_kind: str, args, device: torch.device) -> dict:
    module = make_module(products, encoder, args, loss, device)
    module.train()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3, weight_decay=1e-5, fused=device.type == "cuda")
    batches = [synthetic_batch(args.batch, args.window, products, device, seed) for seed in range(args.n_batches)]
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and not args.fp32)
    compiled = torch.compile(static_loss) if (step_kind == "static" and args.compile) else static_loss

    def step(batch):
        with torch.autocast(**amp):
            if step_kind == "module":
                loss_value = module.shared_step(batch)["loss"]
            else:
                negatives = sample_negatives(module.log_q, module.tc.n_negatives) if loss == "sampled" else None
                loss_value = compiled(module, batch, negatives)
        opt.zero_grad(set_to_none=True)
        loss_value.backward()
        opt.step()
        return loss_value

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t_compile = time.perf_counter()
    for i in range(args.warmup):
        step(batches[i % len(batches)])
    sync()
    warm_s = time.perf_counter() - t_compile
    syncs = "n/a"
    if device.type == "cuda" and step_kind == "static":
        # The eager version of the same step must not synchronise (the compiled one calls the same ops).
        torch.cuda.set_sync_debug_mode("error")
        try:
            with torch.autocast(**amp):
                negatives = sample_negatives(module.log_q, module.tc.n_negatives) if loss == "sampled" else None
                static_loss(module, batches[0], negatives).backward()
            syncs = "none"
        except RuntimeError as e:
            syncs = f"found: {str(e).splitlines()[0][:80]}"
        finally:
            torch.cuda.set_sync_debug_mode("default")
        opt.zero_grad(set_to_none=True)
        sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for rep in range(args.repeats):
        sync()
        t = time.perf_counter()
        for i in range(args.steps):
            last = step(batches[i % len(batches)])
        sync()
        times.append((time.perf_counter() - t) / args.steps)
    dt = sorted(times)[len(times) // 2]
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    res = dict(encoder=encoder, products=products, loss=loss, step=step_kind, compiled=step_kind == "static" and args.compile,
               batch=args.batch, window=args.window, negatives=args.negatives if loss == "sampled" else None,
               ms_per_step=dt * 1e3, events_per_s=args.batch * args.window / dt, peak_gib=peak,
               spread=(max(times) - min(times)) / dt if len(times) > 1 else 0.0, warmup_s=warm_s,
               syncs=syncs, final_loss=float(last.detach().float().cpu()))
    del module, opt, batches
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return res


def check_equivalence(device: torch.device, args) -> float:
    """static_loss == shared_step's loss on the same batch and negatives (eval mode: no dropout draws)."""
    worst = 0.0
    for encoder in ("gru", "transformer"):
        for loss in ("sampled", "full"):
            module = make_module(5_000, encoder, args, loss, device).eval()
            batch = synthetic_batch(8, args.window, 5_000, device, 0)
            batch["intent"][:, ::3] = -1  # some unlabelled positions
            batch["next_product"][:, ::4] = -1
            batch["next_category"][:, ::4] = -1
            batch["next_brand"][:, ::4] = -1
            with torch.no_grad():
                torch.manual_seed(1)
                ref = module.shared_step(batch)["loss"].double()
                torch.manual_seed(1)
                neg = sample_negatives(module.log_q, module.tc.n_negatives) if loss == "sampled" else None
                got = static_loss(module, batch, neg).double()
            worst = max(worst, abs(float(got - ref)) / abs(float(ref)))
    return worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--products", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--encoders", nargs="+", default=["transformer", "gru"])
    p.add_argument("--steps-kinds", nargs="+", default=["module", "static"], choices=["module", "static"])
    p.add_argument("--losses", nargs="+", default=["sampled", "full"], choices=["sampled", "full"])
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--window", type=int, default=50)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--negatives", type=int, default=2048)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--n-batches", type=int, default=4, help="distinct synthetic batches rotated through")
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast on the GPU")
    p.add_argument("--full-max-cells", type=float, default=4e9,
                   help="skip the full softmax above this many logit cells per batch (B x L x P)")
    p.add_argument("--check", action="store_true", help="verify static == shared_step first")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"# device {name}, torch {torch.__version__}", flush=True)
    if args.check:
        print(f"# static loss vs shared_step: max relative difference {check_equivalence(device, args):.2e}", flush=True)
    results = []
    for products in args.products:
        for encoder in args.encoders:
            for loss in args.losses:
                if loss == "full" and args.batch * args.window * products > args.full_max_cells:
                    print(f"skip full softmax at {products:,} products: {args.batch * args.window * products:.2e} "
                          f"logit cells per batch (the memory check refuses it)", flush=True)
                    continue
                for kind in args.steps_kinds:
                    try:
                        r = run_case(products, encoder, loss, kind, args, device)
                    except Exception as e:  # noqa: BLE001 - one failing case must not lose the others' figures
                        r = dict(encoder=encoder, products=products, loss=loss, step=kind,
                                 error=f"{type(e).__name__}: {e}".replace("\n", " ")[:160])
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                    results.append(r)
                    print(json.dumps(r), flush=True)
    print(f"\n{'encoder':11s} {'products':>9s} {'loss':7s} {'step':6s} {'ms/step':>8s} {'events/s':>12s} "
          f"{'peak GiB':>8s} {'syncs':>6s}")
    for r in results:
        if "error" in r:
            print(f"{r['encoder']:11s} {r['products']:>9,d} {r['loss']:7s} {r['step']:6s} {r['error']}")
            continue
        print(f"{r['encoder']:11s} {r['products']:>9,d} {r['loss']:7s} {r['step']:6s} {r['ms_per_step']:8.2f} "
              f"{r['events_per_s']:12,.0f} {r['peak_gib']:8.2f} {r['syncs'][:6]:>6s}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
