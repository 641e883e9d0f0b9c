"""Markdown table of results/ablation.jsonl: one row per recipe, mean ± std over its seeds, VAL then TEST.

    python benchmarks/quality/ablation_table.py [results/ablation.jsonl] [--dataset demo]
    python benchmarks/quality/ablation_table.py --panel demo sim100k-s8 sim100k-s9
    python benchmarks/quality/ablation_table.py --refit-panel nested-demo nested-sim100k-s8 nested-sim100k-s9

--panel: the selection panel (ABLATION.md): per recipe run on every listed shop, the validation mean of the
four primary metrics on each shop (mean over its seeds) and their mean over the shops, which decides.
--refit-panel: the refit's choice on nested data (nested_data.py: the shops without their test weeks), where
the nested test window is not the real one: the mean of the four on it without and with the refit.
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
    ap.add_argument("--panel", nargs="+", metavar="DATASET", help="the selection panel's table over these shops")
    ap.add_argument("--refit-panel", nargs="+", metavar="DATASET", help="first fit vs refit on these nested shops")
    args = ap.parse_args()
    if args.panel:
        return panel(args.results, args.panel)
    if args.refit_panel:
        return refit_panel(args.results, args.refit_panel)
    runs = defaultdict(list)
    for line in args.results.read_text().splitlines():
        r = json.loads(line)
        if r["dataset"] == args.dataset:
            runs[r["name"]].append(r)
    # ablate.py --refit adds the refitted model's test figures ("test_refit") beside the first fit's
    splits = ("val", "test") + (("test_refit",) if any("test_refit" in r for rs in runs.values() for r in rs) else ())
    head = " | ".join(f"{s.replace('_', ' ')} {short}" for s in splits for short in SHORT)
    print(f"| recipe | overrides | seeds | epochs | {head} |")
    print("|---|---|---|---|" + "---|" * (len(splits) * len(COLS)))
    for name, rs in runs.items():
        seeds = ",".join(str(r["seed"]) for r in rs)
        epochs = ",".join(str(r["epochs_run"]) for r in rs)
        cells = [cell([r[s][c] for r in rs if c in r.get(s, {})]) for s in splits for c in COLS]
        print(f"| {name} | `{' '.join(rs[0]['overrides'])}` | {seeds} | {epochs} | " + " | ".join(cells) + " |")
    for kind, suffix in (("", "baselines"), (" refit on train + validation", "refit-baselines")):
        base = args.results.parent / f"{args.dataset}-{suffix}.json"
        if base.is_file():
            print(f"\nbaselines and oracle{kind} (test, deterministic):\n")
            for method, m in json.loads(base.read_text()).items():
                print(f"- {method}: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()))


def panel(results: Path, shops: list[str]) -> None:
    """Validation mean of the four primary metrics per shop and over the shops (for recipes run on all of them)."""
    val = defaultdict(lambda: defaultdict(list))  # recipe -> shop -> [per-seed mean of the four]
    test = defaultdict(lambda: defaultdict(list))
    for line in results.read_text().splitlines():
        r = json.loads(line)
        if r["dataset"] in shops and all(c in r["val"] for c in COLS):
            val[r["name"]][r["dataset"]].append(np.mean([r["val"][c] for c in COLS]))
            test[r["name"]][r["dataset"]].append(np.mean([r["test"][c] for c in COLS]))
    print("| recipe | " + " | ".join(f"val {s} (seeds)" for s in shops) + " | **val, mean over shops** | "
          + " | ".join(f"test {s}" for s in shops) + " |")
    print("|---|" + "---|" * (2 * len(shops) + 1))
    for name, per in val.items():  # a recipe stopped before every shop ran gets no mean: it cannot be chosen
        if len(per) < 2:
            continue  # a row of one shop's own ablation
        cells = [f"{np.mean(per[s]):.4f} ({len(per[s])})" if s in per else "not run" for s in shops]
        tests = [f"{np.mean(test[name][s]):.4f}" if s in per else "" for s in shops]
        mean = f"**{np.mean([np.mean(per[s]) for s in shops]):.4f}**" if set(per) >= set(shops) else ""
        print(f"| {name} | " + " | ".join(cells) + f" | {mean} | " + " | ".join(tests) + " |")


def refit_panel(results: Path, shops: list[str]) -> None:
    """Per recipe run with ablate.py --refit on the nested shops: the nested test mean of the four primary
    metrics of the first fit and of the refit, per shop (mean over its seeds) and over the shops."""
    means = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))  # recipe -> shop -> fit -> [mean]
    for line in results.read_text().splitlines():
        r = json.loads(line)
        if r["dataset"] in shops and "test_refit" in r and all(c in r["test_refit"] for c in COLS):
            for fit in ("test", "test_refit"):
                means[r["name"]][r["dataset"]][fit].append(np.mean([r[fit][c] for c in COLS]))
    print("| recipe | " + " | ".join(f"{s}: first fit → refit (seeds)" for s in shops) + " | **mean over shops** |")
    print("|---|" + "---|" * (len(shops) + 1))
    for name, per in means.items():
        cells = [f"{np.mean(per[s]['test']):.4f} → {np.mean(per[s]['test_refit']):.4f} ({len(per[s]['test'])})"
                 if s in per else "not run" for s in shops]
        mean = (f"**{np.mean([np.mean(per[s]['test']) for s in shops]):.4f} → "
                f"{np.mean([np.mean(per[s]['test_refit']) for s in shops]):.4f}**") if set(per) >= set(shops) else ""
        print(f"| {name} | " + " | ".join(cells) + f" | {mean} |")


if __name__ == "__main__":
    main()
