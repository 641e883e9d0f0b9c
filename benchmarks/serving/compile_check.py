"""Does torch.jit.trace or torch.compile speed up the served forward pass? Measured, not assumed.

    python -m benchmarks.serving.compile_check [--bundle DIR] [--products 50000] [--repeats 200] [--batches 1 32]

Times the forward pass the server runs (encoder over the window, the last position through every head,
log-softmax over the catalogue, top-k) at batch 1 and 32, one intra-op thread as in the server, in
eager mode, traced, and compiled (inductor), and checks that they agree.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.encoding import FEATURES
from models.network import recent_products
from models.predictor import SignalPredictor


class ServedForward(nn.Module):
    """(F, B, L) features of full windows -> the outputs the endpoint reads, as SignalPredictor.score_encoded computes them."""

    def __init__(self, predictor: SignalPredictor):
        super().__init__()
        self.model = predictor.model
        self.predictor = predictor

    def forward(self, features: torch.Tensor, gap: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = {name: features[i] for i, name in enumerate(FEATURES)}
        last = self.model.encode(x)[:, -1]  # (B, D)
        history = recent_products(x["product"], self.model.cfg.history)[:, -1]  # (B, K)
        log_probs = torch.log_softmax(self.model.product_logits(last, history, self.predictor.product_table), dim=-1)  # (B, P)
        return (torch.sigmoid(self.model.intent_logit(last)), torch.sigmoid(self.model.churn_logit(last, gap)),
                torch.topk(log_probs, 10).values, torch.softmax(self.model.category_logits(last), -1),
                torch.softmax(self.model.brand_logits(last), -1))


def latencies_ms(fn, repeats: int, warmup: int) -> np.ndarray:
    """(repeats,) wall times of `fn()` in milliseconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return np.array(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--products", type=int, default=50_000, help="catalogue of the realistic bundle (without --bundle)")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per variant")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32], help="batch sizes timed")
    args = parser.parse_args()

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle
        if bundle is None:
            from benchmarks.serving.realistic_bundle import build
            bundle = build(Path(tmp) / "bundle", n_products=args.products)
        predictor = SignalPredictor.from_bundle(bundle)
    model = predictor.model
    eager = ServedForward(predictor).eval()
    print("| batch | eager ms | jit.trace ms | torch.compile ms | compile time s |")
    print("|---:|---:|---:|---:|---:|")
    for batch in args.batches:
        features = torch.randint(1, 3, (len(FEATURES), batch, model.cfg.max_len))  # (F, B, L), ids valid everywhere
        gap = torch.rand(batch)
        with torch.inference_mode():
            reference = eager(features, gap)
            traced = torch.jit.trace(eager, (features, gap), check_trace=False)
            start = time.perf_counter()
            compiled = torch.compile(eager)
            compiled(features, gap)
            compile_s = time.perf_counter() - start
            for variant in (traced, compiled):
                for a, b in zip(reference, variant(features, gap)):
                    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
            row = [float(np.median(latencies_ms(lambda m=m: m(features, gap), repeats=args.repeats, warmup=10)))
                   for m in (eager, traced, compiled)]
        print(f"| {batch} | {row[0]:.2f} | {row[1]:.2f} | {row[2]:.2f} | {compile_s:.0f} |")


if __name__ == "__main__":
    main()
