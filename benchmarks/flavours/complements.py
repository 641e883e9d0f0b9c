"""Basket completion on real invoices: the bundle's complement table beside raw co-purchase counts.

    python -m benchmarks.flavours.complements [--test-days 30] [--invoices 3000] [--seed 0]

UCI Online Retail I (../shared/datasets/online-retail): one basket per invoice (cancellations and returns
out). Invoices before the last --test-days train; in each test invoice with at least two products the
training window knows, one line is hidden at random (seeded) and ranked from the others (the basket's own
products never count). Methods, all from the same training invoices:
  - complementary: what serving answers (`models.complements`: cosine over basket membership, top 20
    complements per product, rows summed over the basket);
  - co-purchase counts (baseline): raw shared-invoice counts summed over the basket, the whole row kept;
  - popularity: the most bought products (what needs no basket at all).
HitRate@k = share of test invoices whose hidden product is in the top k; MRR@10; 95% intervals by a
bootstrap over invoices (200 draws, the same for every method).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from models.complements import complement_table, complements_of
from models.vocab import N_RESERVED, Vocabulary
from training.list_tables import COMPLEMENTS_PER_PRODUCT

DATA = Path(__file__).resolve().parents[2].parent / "shared/datasets/online-retail/online_retail_I_2010-2011.parquet"
KS = (5, 10, 20)


def invoices(path: Path) -> pd.DataFrame:
    lines = pd.read_parquet(path, columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate"])
    lines = lines[~lines["InvoiceNo"].str.startswith("C") & (lines["Quantity"] > 0)]
    return lines.drop_duplicates(["InvoiceNo", "StockCode"])


def ranks(scored: tuple[np.ndarray, np.ndarray], target: int, popularity_order: np.ndarray | None = None) -> int:
    """1-based rank of target among the candidates (ties against it); 10**9 when absent."""
    ids, scores = scored
    where = np.flatnonzero(ids == target)
    if not len(where):
        return 10**9
    return int((scores >= scores[where[0]]).sum())


def evaluate(test_days: int, n_invoices: int, seed: int, path: Path = DATA) -> dict:
    lines = invoices(path)
    cut = lines["InvoiceDate"].max().normalize() - pd.Timedelta(days=test_days)
    train, test = lines[lines["InvoiceDate"] < cut], lines[lines["InvoiceDate"] >= cut]
    vocab = Vocabulary.from_counts(train["StockCode"].value_counts(), 1)
    n = len(vocab)
    basket = train["InvoiceNo"].factorize()[0]
    product = vocab.encode(train["StockCode"].to_numpy())
    served = complement_table(basket, product, n, COMPLEMENTS_PER_PRODUCT)
    counts = complement_table(basket, product, n, n, normalise=False)  # every co-purchased product kept
    bought = np.bincount(product, minlength=n).astype(np.float32)
    bought[:N_RESERVED] = -1
    rng = np.random.default_rng(seed)
    test = test.assign(pid=vocab.encode(test["StockCode"].to_numpy()))
    test = test[test["pid"] >= N_RESERVED]
    groups = [g["pid"].to_numpy() for _, g in test.groupby("InvoiceNo", sort=True) if len(g) >= 2]
    picks = rng.choice(len(groups), min(n_invoices, len(groups)), replace=False)
    found = {"complementary": [], "co-purchase counts": [], "popularity": []}
    for i in picks:
        items = groups[i]
        hidden = rng.integers(len(items))
        target, rest = items[hidden], np.delete(items, hidden)
        found["complementary"].append(ranks(complements_of(rest, *served), target))
        found["co-purchase counts"].append(ranks(complements_of(rest, *counts), target))
        pop = bought.copy()
        pop[rest] = -1
        found["popularity"].append(int((pop >= pop[target]).sum()))
    table = rank_table(found, rng.integers(0, len(picks), (200, len(picks))))
    return {"train_invoices": int(train["InvoiceNo"].nunique()), "test_invoices": len(picks), "products": n - N_RESERVED,
            "cut": str(cut), "methods": table}


def rank_table(found: dict[str, list[int]], draws: np.ndarray) -> dict[str, dict[str, list[float]]]:
    """1-based ranks of the hidden product per case, per method -> HitRate@k and MRR@10, each [mean, 2.5%, 97.5%]
    over the bootstrap `draws` (B, n) of case indices (the same draws for every method)."""
    table = {}
    for method, r in found.items():
        r = np.asarray(r)
        row = {}
        for k in KS:
            row[f"hit@{k}"] = interval((r <= k).astype(float), draws)
        row["mrr@10"] = interval(np.where(r <= 10, 1.0 / r, 0.0), draws)
        table[method] = row
    return table


def interval(values: np.ndarray, draws: np.ndarray) -> list[float]:
    """(n,) per-case values -> [mean, 2.5%, 97.5%] of the mean over the bootstrap draws (B, n)."""
    low, high = np.percentile(values[draws].mean(1), [2.5, 97.5])
    return [float(values.mean()), float(low), float(high)]


def markdown(result: dict) -> str:
    lines = [(f"train invoices {result['train_invoices']:,} (before {result['cut'][:10]}), test invoices "
             f"{result['test_invoices']:,}, products {result['products']:,}"), "",
             "| method | " + " | ".join(f"HitRate@{k}" for k in KS) + " | MRR@10 |", "|---|" + "---:|" * (len(KS) + 1)]
    for method, row in result["methods"].items():
        cells = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in row.values()]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test-days", type=int, default=30)
    parser.add_argument("--invoices", type=int, default=3000, help="test invoices drawn (seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = evaluate(args.test_days, args.invoices, args.seed, args.data)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
