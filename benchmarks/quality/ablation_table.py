"""Markdown table of results/ablation.jsonl: one row per recipe, mean ± std over its seeds, VAL then TEST.

    python benchmarks/quality/ablation_table.py [results/ablation.jsonl] [--dataset demo]
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
COLS = ("intent_pr_auc", "churn_pr_auc", "next_recall_at_20", "next_mrr_at_20")
SHORT = ("intent PR", "churn PR", "next R@20", "next MRR@20")


def cell(values: list[float]) -> str:
    if not values:
        return ""
    v = np.asarray(values)
    return f"{v.mean():.3f}" if len(v) == 1 else f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="?", type=Path, default=HERE / "results" / "ablation.jsonl",
                    help="the ablation runs (ablate.py appends to it)")
    ap.add_argument("--dataset", default="demo")
    args = ap.parse_args()
    runs = defaultdict(list)
    for line in args.results.read_text().splitlines():
        r = json.loads(line)
        if r["dataset"] == args.dataset:
            runs[r["name"]].append(r)
    head = " | ".join(f"val {s}" for s in SHORT) + " | " + " | ".join(f"test {s}" for s in SHORT)
    print(f"| recipe | overrides | seeds | epochs | {head} |")
    print("|---|---|---|---|" + "---|" * (2 * len(COLS)))
    for name, rs in runs.items():
        seeds = ",".join(str(r["seed"]) for r in rs)
        epochs = ",".join(str(r["epochs_run"]) for r in rs)
        cells = [cell([r[s][c] for r in rs if c in r[s]]) for s in ("val", "test") for c in COLS]
        print(f"| {name} | `{' '.join(rs[0]['overrides'])}` | {seeds} | {epochs} | " + " | ".join(cells) + " |")
    base = args.results.parent / f"{args.dataset}-baselines.json"
    if base.is_file():
        print("\nbaselines and oracle (test, deterministic):\n")
        for method, m in json.loads(base.read_text()).items():
            print(f"- {method}: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()))


if __name__ == "__main__":
    main()
