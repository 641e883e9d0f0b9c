"""Trending (the last 7 days' best-sellers, `signals trends`) against all-time popularity, for the next
week's purchases, on real invoices.

    python -m benchmarks.flavours.trending [--weeks 8] [--k 20]

UCI Online Retail I (../shared/datasets/online-retail; cancellations and returns out): for each of the
last --weeks weeks, both lists are made from the invoices before the week starts, and scored on the
week's purchase lines. trending: `events.trends.compute_trends` shop-wide, 7 days, by purchases (what the
endpoint serves; the data has no categories or brands); all-time popularity: purchases since the first
invoice. Recall@k: share of the week's purchase lines whose product is in the list; precision@k: share
of the list's products bought that week (in the JSON only: on this shop every best-seller sells every week). Mean over weeks, and the number of weeks each method wins.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.flavours.complements import DATA
from events.trends import compute_trends


def purchases(path: Path) -> pd.DataFrame:
    lines = pd.read_parquet(path, columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice"])
    lines = lines[~lines["InvoiceNo"].str.startswith("C") & (lines["Quantity"] > 0)]
    return pd.DataFrame({"ts": lines["InvoiceDate"].dt.tz_localize("UTC"), "event_type": "purchase",
                         "product_id": lines["StockCode"], "category": None, "brand": None,
                         "price": lines["UnitPrice"].astype(float)})


def evaluate(weeks: int, k: int, path: Path = DATA) -> dict:
    events = purchases(path)
    end = events["ts"].max().normalize()
    rows = []
    for w in range(weeks, 0, -1):
        start = end - pd.Timedelta(days=7 * w)
        before, week = events[events["ts"] < start], events[(events["ts"] >= start) & (events["ts"] < start + pd.Timedelta(days=7))]
        table, _ = compute_trends(before, days=7, as_of=start)
        lists = {"trending (7 days)": table.loc[table["scope"] == "shop", "product_id"].head(k).tolist(),
                 "all-time popularity": before["product_id"].value_counts().index[:k].tolist()}
        bought = set(week["product_id"])
        row = {"week": str(start.date()), "lines": len(week)}
        for method, products in lists.items():
            row[method] = {"recall": float(week["product_id"].isin(products).mean()),
                           "precision": len(bought & set(products)) / k}
        rows.append(row)
    methods = ["trending (7 days)", "all-time popularity"]
    summary = {m: {metric: float(np.mean([r[m][metric] for r in rows])) for metric in ("recall", "precision")}
               for m in methods}
    wins = sum(r[methods[0]]["recall"] > r[methods[1]]["recall"] for r in rows)
    return {"k": k, "weeks": rows, "summary": summary, "trending_wins_recall": int(wins)}


def markdown(result: dict) -> str:
    k = result["k"]
    lines = [f"| method | Recall@{k} (mean of {len(result['weeks'])} weeks) | weeks won |", "|---|---:|---:|"]
    n = len(result["weeks"])
    for method, row in result["summary"].items():
        won = result["trending_wins_recall"] if method.startswith("trending") else n - result["trending_wins_recall"]
        lines.append(f"| {method} | {row['recall']:.4f} | {won} of {n} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = evaluate(args.weeks, args.k, args.data)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
