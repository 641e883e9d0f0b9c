"""`people_like_you` on the simulator: does the lookalike list hit a customer's future products and latent
tastes better than popularity and than the best-sellers of their own history's categories?

    python -m benchmarks.flavours.sim_people_like_you [--events 300000] [--seed 0] [--cases 2000] [--k 10] [--epochs 3]

The shop and model of benchmarks/flavours/sim_shop.py (trained by `training.train` on the days before the
held-out ones; the bundle's customer index holds the training days' recent buyers). Cases: customers with
events both before and after the cut, drawn at random (seeded); the request holds their latest --history
events before the cut, as of the cut, purchased products excluded (as `signals score` asks), and
`people_like_you` is answered by the endpoint's engine (serving/lists/people_like_you.py). Baselines from the
training days, purchased products excluded: popularity (the most bought products) and own-history categories
(the best-sellers of the customer's three most visited categories, taken in turn); the model's `next` ranking
for reference. Measures over the k slots:
  - latent category / favourite brand: share of the slots holding a product of one of the customer's latent
    categories / favourite brands (oracle_tastes.parquet);
  - HitRate@k: the customer views, carts or buys a listed product in the held-out days; PurchaseHit@k: buys
    one (over the customers who buy anything then).
95% intervals by a bootstrap over customers (200 draws, the same for every method).
"""
from __future__ import annotations

from itertools import chain, zip_longest

import numpy as np
import pandas as pd

from benchmarks.flavours.complements import interval
from benchmarks.flavours.sim_shop import (
    Shop,
    method_rows,
    product_attributes,
    read_tastes,
    run_list_benchmark,
    served_lists,
    taste_precision,
)

BOOTSTRAP = 200
OWN_CATEGORIES = 3


def evaluate(data: Shop, bundle, seed: int, n_cases: int, k: int, history: int) -> dict:
    from serving.api_types import Filters, ModelIdentity
    from serving.engine import SignalsEngine
    from serving.segments import load_rules
    from serving.settings import DEFAULT_SEGMENTS_CONFIG

    engine = SignalsEngine.from_bundle(bundle, ModelIdentity(name="benchmark", version=None, run_id=None),
                                       load_rules(DEFAULT_SEGMENTS_CONFIG))
    rng = np.random.default_rng(seed)
    both = np.intersect1d(data.train["user_id"].unique(), data.test["user_id"].unique())
    users = np.sort(rng.choice(both, min(n_cases, len(both)), replace=False)).tolist()
    before = data.train[data.train["user_id"].isin(users)].groupby("user_id", sort=True)
    after = data.test[data.test["user_id"].isin(users)].groupby("user_id", sort=True)
    histories = [before.get_group(u).tail(history).drop(columns="user_id") for u in users]
    later = [set(after.get_group(u)["product_id"]) for u in users]
    bought_later = [set(g.loc[g["event_type"] == "purchase", "product_id"]) for g in (after.get_group(u) for u in users)]
    moments = [data.cut.to_pydatetime()] * len(users)
    filters = Filters(exclude_purchased=True)

    purchases = data.train[data.train["event_type"] == "purchase"]
    popular = purchases["product_id"].value_counts().index.tolist()
    by_category = purchases.groupby("category")["product_id"].agg(lambda p: p.value_counts().index.tolist())
    own_bought = [set(h.loc[h["event_type"] == "purchase", "product_id"]) for h in (before.get_group(u) for u in users)]
    own_lists = []
    for u, bought in zip(users, own_bought):
        top = before.get_group(u)["category"].value_counts().index[:OWN_CATEGORIES]
        turns = chain.from_iterable(zip_longest(*(by_category.get(c, []) for c in top)))
        own_lists.append(_first(turns, bought, k))
    methods = {
        "people_like_you": served_lists(engine, histories, moments, "people_like_you", k, filters),
        "popularity": [_first(popular, bought, k) for bought in own_bought],
        "own-history categories' best-sellers": own_lists,
        "next (the model's ranking, reference)": served_lists(engine, histories, moments, "next", k, filters),
    }

    tastes, attributes = read_tastes(data), product_attributes(pd.concat([data.train, data.test]))
    draws = rng.integers(0, len(users), (BOOTSTRAP, len(users)))
    buyers = np.flatnonzero([bool(b) for b in bought_later])
    buyer_draws = rng.integers(0, len(buyers), (BOOTSTRAP, len(buyers)))
    table = {}
    for name, lists in methods.items():
        per_case = taste_precision(lists, users, tastes, attributes, k)
        per_case[f"HitRate@{k}"] = np.array([bool(set(items) & seen) for items, seen in zip(lists, later)], float)
        table[name] = {measure: interval(values, draws) for measure, values in per_case.items()}
        hits = np.array([bool(set(lists[i]) & bought_later[i]) for i in buyers], float)
        table[name][f"PurchaseHit@{k}"] = interval(hits, buyer_draws)
        table[name]["filled"] = float(np.mean([len(items) for items in lists]) / k)
    return {"cut": str(data.cut), "customers": len(users), "buyers": len(buyers), "k": k, "methods": table}


def _first(ranked, excluded: set, k: int) -> list[str]:
    out = []
    for product in ranked:
        if product is not None and product not in excluded and product not in out:
            out.append(product)
            if len(out) == k:
                break
    return out


def markdown(result: dict) -> str:
    k = result["k"]
    lines = [(f"{result['customers']:,} customers as of {result['cut'][:10]} ({result['buyers']:,} buy in the "
              f"held-out days), lists of {k}"), "",
             f"| method | latent category | favourite brand | HitRate@{k} | PurchaseHit@{k} | slots filled |",
             "|---|---:|---:|---:|---:|---:|"]
    return "\n".join(lines + method_rows(result))


def main() -> None:
    run_list_benchmark(__doc__, "customers evaluated (seeded draw)", evaluate, markdown)


if __name__ == "__main__":
    main()
