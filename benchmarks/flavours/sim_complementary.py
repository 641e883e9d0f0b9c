"""`complementary` on the simulator, against the complement truth: the bundle's complement table beside raw
co-purchase counts and popularity.

    python -m benchmarks.flavours.sim_complementary [--events 1000000] [--seed 0] [--test-days 7] [--main-share 0.3]

The shop of benchmarks/flavours/sim_shop.py (complements.main_share 0.3: a third of the products have 1-3
accessories). Every table is computed from the events before the held-out days, by the code training runs
(`training.list_tables.list_arrays`: carts and purchases of a session form a basket; cosine over basket
membership, top 20 per product); the baselines from the same baskets:
  - co-purchase counts: raw shared-basket counts (`models.complements`, normalise=False, top 200 kept);
  - popularity: the most bought products of the training days.
Two measures on the held-out days:
  1. after a main purchase: for each held-out session's first purchased main item, the list for a basket of
     that item alone; recall@k = share of its true accessories (complements.parquet) in the top k (and the
     share ever bought with it in the training days: what any co-purchase table can reach);
  2. hide-one basket completion: each held-out basket (cart and purchase products of a session) with two or
     more products the training days know, one hidden at random, ranked from the others (HitRate@k, MRR@10).
95% intervals by a bootstrap over sessions (200 draws, the same for every method).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from benchmarks.flavours.complements import KS, interval, rank_table, ranks
from benchmarks.flavours.sim_shop import Shop, add_shop_arguments, shop
from models.complements import complement_table, complements_of
from models.encoding import EventEncoder
from models.vocab import N_RESERVED
from training.list_tables import BASKET_EVENTS, list_arrays

COUNTS_KEPT = 200
"""Raw co-purchase counts kept per product: more than any simulated product has partners (checked in the output)."""
BOOTSTRAP = 200


def evaluate(data: Shop, seed: int) -> dict:
    encoder = EventEncoder.fit(data.train)
    products = encoder.products
    n = len(products)
    arrays = list_arrays(data.train, encoder)
    served = arrays["complement_ids"], arrays["complement_score"]
    basket_rows = data.train[data.train["event_type"].isin(BASKET_EVENTS)]
    basket = pd.MultiIndex.from_arrays([basket_rows["user_id"], basket_rows["session_id"]]).factorize()[0]
    counts = complement_table(basket, products.encode(basket_rows["product_id"].to_numpy()), n, COUNTS_KEPT,
                              normalise=False)
    bought = np.bincount(products.encode(data.train.loc[data.train["event_type"] == "purchase", "product_id"]
                                         .to_numpy()), minlength=n).astype(np.float32)
    bought[:N_RESERVED] = -1
    methods = {"complementary": lambda items: complements_of(items, *served),
               "co-purchase counts": lambda items: complements_of(items, *counts),
               "popularity": lambda items: popular(bought, items)}
    rng = np.random.default_rng(seed)
    return {"cut": str(data.cut), "products": n - N_RESERVED,
            "counts_rows_full": int((counts[0][:, -1] >= N_RESERVED).sum()),
            "after_main_purchase": after_main_purchase(data, products, methods, rng),
            "basket_completion": basket_completion(data, products, methods, rng)}


def popular(bought: np.ndarray, basket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = bought.copy()
    scores[basket] = -1
    order = np.argsort(-scores, kind="stable")[:100]
    return order, scores[order]


def after_main_purchase(data: Shop, products, methods: dict, rng: np.random.Generator) -> dict:
    if not (data.folder / "complements.parquet").is_file():  # --main-share 0: no main items, nothing to recall
        return {"cases": 0, "methods": {}}
    truth = pd.read_parquet(data.folder / "complements.parquet")
    accessories = {main: products.encode(group["accessory_product"].to_numpy())
                   for main, group in truth.groupby("main_product")}
    bought = data.test[(data.test["event_type"] == "purchase") & data.test["product_id"].isin(accessories)]
    first = bought.drop_duplicates("session_id")
    cases = [(int(products.encode(np.array([m]))[0]), accessories[m]) for m in first["product_id"]]
    cases = [(main, acc[acc >= N_RESERVED]) for main, acc in cases if main >= N_RESERVED]
    cases = [(main, acc) for main, acc in cases if len(acc)]
    draws = rng.integers(0, len(cases), (BOOTSTRAP, len(cases)))
    table = {}
    for name, method in methods.items():
        found = np.array([[np.isin(acc, method(np.array([main]))[0][:k]).mean() for k in KS] for main, acc in cases])
        table[name] = {f"recall@{k}": interval(found[:, i], draws) for i, k in enumerate(KS)}
    # What any table counted on the training baskets can reach: accessories bought with the main item there at all.
    reachable = np.array([np.isin(acc, methods["co-purchase counts"](np.array([main]))[0]).mean() for main, acc in cases])
    return {"cases": len(cases), "reachable": interval(reachable, draws), "methods": table}


def basket_completion(data: Shop, products, methods: dict, rng: np.random.Generator) -> dict:
    rows = data.test[data.test["event_type"].isin(BASKET_EVENTS)]
    rows = rows.assign(pid=products.encode(rows["product_id"].to_numpy()))
    rows = rows[rows["pid"] >= N_RESERVED].drop_duplicates(["session_id", "pid"])
    groups = [g.to_numpy() for _, g in rows.groupby("session_id", sort=True)["pid"] if len(g) >= 2]
    found: dict[str, list[int]] = {name: [] for name in methods}
    for items in groups:
        hidden = rng.integers(len(items))
        target, rest = items[hidden], np.delete(items, hidden)
        for name, method in methods.items():
            found[name].append(ranks(method(rest), target))
    draws = rng.integers(0, len(groups), (BOOTSTRAP, len(groups)))
    return {"baskets": len(groups), "methods": rank_table(found, draws)}


def markdown(result: dict) -> str:
    def cells(row: dict) -> str:
        return " | ".join(f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in row.values())

    after, baskets = result["after_main_purchase"], result["basket_completion"]
    lines = [(f"held out from {result['cut'][:10]}; {result['products']:,} products known; "
              f"{result['counts_rows_full']} count rows reach {COUNTS_KEPT}"), "",
             (f"after a main purchase ({after['cases']:,} sessions): recall of its true accessories; "
              f"{after.get('reachable', [0.0])[0]:.3f} of them were ever bought with it in the training days"), "",
             "| method | " + " | ".join(f"Recall@{k}" for k in KS) + " |", "|---|" + "---:|" * len(KS)]
    lines += [f"| {name} | {cells(row)} |" for name, row in after["methods"].items()]
    lines += ["", f"hide-one basket completion ({baskets['baskets']:,} held-out baskets)", "",
              "| method | " + " | ".join(f"HitRate@{k}" for k in KS) + " | MRR@10 |", "|---|" + "---:|" * (len(KS) + 1)]
    lines += [f"| {name} | {cells(row)} |" for name, row in baskets["methods"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shop_arguments(parser, events=1_000_000)
    args = parser.parse_args()
    result = evaluate(shop(args), args.seed)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
