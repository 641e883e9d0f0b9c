"""A bundle the size of a real shop (50,000 products, window 50) with random weights, for speed tests.

Speed does not depend on what the weights learnt, only on the shapes, so no training is needed.
`python -m benchmarks.serving.realistic_bundle OUT_DIR [--products 50000]` writes it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from models.bundle import save_bundle
from events.schema import EVENT_TYPES
from models.encoding import EventEncoder
from models.network import ModelConfig, SessionSignalsModel
from models.vocab import N_RESERVED, Vocabulary

N_PRODUCTS = 50_000
N_CATEGORIES = 1_000
N_BRANDS = 2_000
WINDOW = 50


def build(out: Path, seed: int = 0, n_products: int = N_PRODUCTS) -> Path:
    """Write the bundle into `out`; `n_products` smaller than the default only for quick checks."""
    n_categories, n_brands = min(N_CATEGORIES, n_products), min(N_BRANDS, n_products)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    products = Vocabulary([f"p{i}" for i in range(n_products)])
    categories = Vocabulary([f"cat{i}" for i in range(n_categories)])
    brands = Vocabulary([f"brand{i}" for i in range(n_brands)])
    product_category = np.concatenate([[1, 1], N_RESERVED + rng.integers(0, n_categories, n_products)])
    product_brand = np.concatenate([[1, 1], N_RESERVED + rng.integers(0, n_brands, n_products)])
    price_edges = np.quantile(np.log1p(rng.lognormal(3.0, 1.0, 10_000)), np.linspace(0, 1, 17)[1:-1])
    encoder = EventEncoder(products, categories, brands, Vocabulary(list(EVENT_TYPES)), price_edges,
                           product_category.astype(np.int64), product_brand.astype(np.int64))
    model = SessionSignalsModel(ModelConfig(**encoder.sizes(), encoder="gru", d_model=64, max_len=WINDOW)).eval()
    model.set_catalogue(torch.from_numpy(encoder.product_category), torch.from_numpy(encoder.product_brand))
    # Zipf-like popularity, as in real catalogues.
    counts = 1.0 / np.arange(1, n_products + 1)
    popularity = np.concatenate([[-1e9, -1e9], np.log(counts / counts.sum())])
    uniform = lambda n: [0.0, 0.0] + [1.0 / n] * n  # noqa: E731 - PAD and UNK get no mass
    meta = {
        "intent_base_rate": 0.08, "churn_base_rate": 0.6, "churn_horizon_days": 7.0,
        "popularity_log_prob": popularity.tolist(), "category_prior": uniform(n_categories),
        "brand_prior": uniform(n_brands), "dataset": "synthetic-benchmark", "test_metrics": {},
    }
    return save_bundle(out, model, encoder, meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--products", type=int, default=N_PRODUCTS, help="catalogue size (default %(default)s)")
    args = parser.parse_args()
    print(build(args.out, n_products=args.products))


if __name__ == "__main__":
    main()
