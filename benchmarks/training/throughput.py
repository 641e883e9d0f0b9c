"""Training-step throughput of the production step (`SignalsModule.train_loss`) on synthetic batches.

    python -m benchmarks.training.throughput                       # GPU if there is one, else CPU
    python -m benchmarks.training.throughput --device cpu --batch 128 --steps 3 --warmup 1 --modes eager

Model: width 128, window 50; a 2-layer causal Transformer and a 1-layer GRU, the catalogue at
100,000 and 1,000,000 products. Batches: B windows of L real events, every position labelled for
intent and next product (as the reference microbenchmark scores every position), one churn example
per window, built on the host by the production `collate` index step (`add_label_index`).
events/s = B x L / step time; peak GPU memory from torch.cuda.max_memory_allocated.

Modes, all on one `SignalsModule` (its model, its losses, its log Q buffer, its weights):
- `eager`: `module.train_loss(batch)` + backward + fused AdamW in a plain loop, bf16 autocast on a GPU.
- `compiled`: the same with `train.compile=true` (the module compiles its own step).
- `lightning`: `Trainer.fit` with the compiled module, as `training.lightning_fit.fit` runs it (bf16-mixed,
  `--deterministic` as `train.deterministic`, fused AdamW from `configure_optimizers`, the module's own
  logging), over a DataLoader of pre-collated pinned batches; the time of the last `--steps` steps is
  measured by a callback.
On a GPU, `--check-syncs` runs one eager step under torch.cuda.set_sync_debug_mode("error").
A failing case is printed with its error and the others still run; the exit code is then 1.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

import lightning as L  # noqa: E402

from models.encoding import GAP_MINUTES, HISTORY_COUNTS, HISTORY_TIMES  # noqa: E402
from models.vocab import N_RESERVED  # noqa: E402
from training.module import SignalsModule  # noqa: E402
from training.windows import add_label_index  # noqa: E402

N_CATEGORIES, N_BRANDS = 2_000, 1_000


def model_cfg(products: int, encoder: str, d: int, window: int) -> dict:
    return dict(n_products=products, n_categories=N_CATEGORIES, n_brands=N_BRANDS, n_event_types=6,
                n_price_buckets=19, n_gap_buckets=22, encoder=encoder, d_model=d,
                n_layers=2 if encoder == "transformer" else 1, n_heads=4, dropout=0.1, max_len=window)


def synthetic_batch(B: int, L: int, products: int, seed: int) -> dict[str, torch.Tensor]:
    """A collated batch on the host (as the DataLoader hands it over)."""
    g = torch.Generator().manual_seed(seed)
    ri = lambda lo, hi, shape: torch.randint(lo, hi, shape, generator=g)
    # Zipf-like product popularity, as in real catalogues (matters for the sampled softmax's proposal).
    ranks = torch.arange(1, products - N_RESERVED + 1, dtype=torch.float64)
    prod = torch.multinomial(1.0 / ranks, B * (L + 1), replacement=True, generator=g).reshape(B, L + 1) + N_RESERVED
    b = {
        "product": prod[:, :L].contiguous(), "category": ri(2, N_CATEGORIES, (B, L)), "brand": ri(2, N_BRANDS, (B, L)),
        "event_type": ri(1, 6, (B, L)), "price_bucket": ri(1, 19, (B, L)), "gap_bucket": ri(1, 22, (B, L)),
        "new_session": ri(1, 3, (B, L)),
        **{name: ri(0, 50, (B, L)) for name in HISTORY_COUNTS},  # read only with model.history_counts
        **{name: ri(0, 2000, (B, L)) for name in HISTORY_TIMES},  # read only with model.history_times
        GAP_MINUTES: ri(0, 2000, (B, L)),  # read only by the uplift head
        "intent": ri(0, 2, (B, L)), "next_product": prod[:, 1:].contiguous(),
        "next_category": ri(2, N_CATEGORIES, (B, L)), "next_brand": ri(2, N_BRANDS, (B, L)),
        "event_row": torch.arange(B * L).reshape(B, L),
        "churn_pos": ri(0, L, (B,)), "churn_gap": torch.rand(B, generator=g), "churn_label": ri(0, 2, (B,)).float(),
        "churn_key": torch.arange(B), "churn_batch": torch.arange(B),
    }
    return add_label_index(b)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def make_module(products: int, encoder: str, args, loss: str, compile_step: bool) -> SignalsModule:
    torch.manual_seed(0)
    ranks = torch.arange(1, products + 1, dtype=torch.float64)
    log_q = torch.log(1.0 / ranks / (1.0 / ranks).sum())
    log_q[:N_RESERVED] = -1e9
    tc = dict(next_loss=loss, n_negatives=args.negatives, batch_size=args.batch, compile=compile_step, lr=1e-3)
    module = SignalsModule(model_cfg(products, encoder, args.d_model, args.window), tc, log_q)
    g = torch.Generator().manual_seed(1)
    module.model.set_catalogue(torch.randint(2, N_CATEGORIES, (products,), generator=g),
                               torch.randint(2, N_BRANDS, (products,), generator=g))
    return module


class StepTimer(L.Callback):
    """Wall time of the last `steps` training steps of a fit, the device synchronised at both ends."""

    def __init__(self, first: int, sync):
        self.first, self.sync, self.t0, self.t1 = first, sync, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.first:
            self.sync()
            self.t0 = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        self.sync()
        self.t1 = time.perf_counter()


def time_lightning(module: SignalsModule, batches: list, args, device: torch.device, sync) -> tuple[float, float]:
    steps = args.warmup + args.steps
    loader = torch.utils.data.DataLoader([batches[i % len(batches)] for i in range(steps)], batch_size=None,
                                         pin_memory=device.type == "cuda")
    timer = StepTimer(args.warmup, sync)
    trainer = L.Trainer(max_steps=steps, accelerator="gpu" if device.type == "cuda" else "cpu", devices=1,
                        precision="bf16-mixed" if device.type == "cuda" and not args.fp32 else "32-true",
                        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        deterministic=args.deterministic, log_every_n_steps=10, limit_val_batches=0,
                        callbacks=[timer])
    t = time.perf_counter()
    trainer.fit(module, loader)
    return (timer.t1 - timer.t0) / args.steps, timer.t0 - t


def time_loop(module: SignalsModule, batches: list, args, device: torch.device, sync) -> tuple[float, float]:
    module.to(device).train()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3, weight_decay=1e-5, fused=device.type == "cuda")
    batches = [to_device(b, device) for b in batches]
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and not args.fp32)

    def step(batch):
        with torch.autocast(**amp):
            loss = module.train_loss(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t = time.perf_counter()
    for i in range(args.warmup):
        step(batches[i % len(batches)])
    sync()
    warm_s = time.perf_counter() - t
    times = []
    for _ in range(args.repeats):
        sync()
        t = time.perf_counter()
        for i in range(args.steps):
            step(batches[i % len(batches)])
        sync()
        times.append((time.perf_counter() - t) / args.steps)
    return sorted(times)[len(times) // 2], warm_s


def check_syncs(products: int, encoder: str, loss: str, args, device: torch.device) -> str:
    """One eager step (forward + backward) with syncs turned into errors."""
    module = make_module(products, encoder, args, loss, False).to(device).train()
    batch = to_device(synthetic_batch(args.batch, args.window, products, 0), device)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            module.train_loss(batch)["loss"].backward()
        return "none"
    except RuntimeError as e:
        return f"found: {str(e).splitlines()[0][:100]}"
    finally:
        torch.cuda.set_sync_debug_mode("default")


def run_case(products: int, encoder: str, loss: str, mode: str, args, device: torch.device) -> dict:
    # Every mode under the same setting (a Trainer would otherwise leave its own behind for the next case).
    if args.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS refuses deterministic mode without it
    torch.use_deterministic_algorithms(args.deterministic)
    module = make_module(products, encoder, args, loss, compile_step=mode != "eager")
    batches = [synthetic_batch(args.batch, args.window, products, seed) for seed in range(args.n_batches)]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    timing = time_lightning if mode == "lightning" else time_loop
    dt, warm_s = timing(module, batches, args, device, sync)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    res = dict(encoder=encoder, products=products, loss=loss, mode=mode, batch=args.batch, window=args.window,
               negatives=args.negatives if loss == "sampled" else None, ms_per_step=dt * 1e3,
               events_per_s=args.batch * args.window / dt, peak_gib=peak, warmup_s=warm_s)
    del module, batches
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--products", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--encoders", nargs="+", default=["transformer", "gru"])
    p.add_argument("--modes", nargs="+", default=["eager", "compiled", "lightning"],
                   choices=["eager", "compiled", "lightning"])
    p.add_argument("--losses", nargs="+", default=["sampled", "full"], choices=["sampled", "full"])
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--window", type=int, default=50)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--negatives", type=int, default=8192)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--n-batches", type=int, default=4, help="distinct synthetic batches rotated through")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast on the GPU")
    p.add_argument("--deterministic", action="store_true",
                   help="torch.use_deterministic_algorithms in every mode (train.deterministic=true)")
    p.add_argument("--full-max-cells", type=float, default=4e9,
                   help="skip the full softmax above this many logit cells per batch (B x L x P)")
    p.add_argument("--check-syncs", action="store_true", help="GPU: look for host-device syncs in the step")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"# device {name}, torch {torch.__version__}", flush=True)
    results = []
    for products in args.products:
        for encoder in args.encoders:
            for loss in args.losses:
                if loss == "full" and args.batch * args.window * products > args.full_max_cells:
                    print(f"skip full softmax at {products:,} products: {args.batch * args.window * products:.2e} "
                          f"logit cells per batch (the memory check refuses it)", flush=True)
                    continue
                if args.check_syncs and device.type == "cuda":
                    syncs = check_syncs(products, encoder, loss, args, device)
                    print(f"# syncs in the {encoder} {loss} step at {products:,} products: {syncs}", flush=True)
                for mode in args.modes:
                    try:
                        r = run_case(products, encoder, loss, mode, args, device)
                    except Exception as e:  # noqa: BLE001 - one failing case must not lose the others' figures
                        r = dict(encoder=encoder, products=products, loss=loss, mode=mode,
                                 error=f"{type(e).__name__}: {e}".replace("\n", " ")[:200])
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                    results.append(r)
                    print(json.dumps(r), flush=True)
    print(f"\n{'encoder':11s} {'products':>9s} {'loss':7s} {'mode':9s} {'ms/step':>8s} {'events/s':>12s} {'peak GiB':>8s}")
    for r in results:
        if "error" in r:
            print(f"{r['encoder']:11s} {r['products']:>9,d} {r['loss']:7s} {r['mode']:9s} {r['error']}")
            continue
        print(f"{r['encoder']:11s} {r['products']:>9,d} {r['loss']:7s} {r['mode']:9s} {r['ms_per_step']:8.2f} "
              f"{r['events_per_s']:12,.0f} {r['peak_gib']:8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
