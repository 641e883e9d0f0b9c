"""`similar` on the simulator: for a viewed product, how well the list fits the shopper's latent tastes and what
they look at next, beside same-category baselines.

    python -m benchmarks.flavours.sim_similar [--events 300000] [--seed 0] [--cases 2000] [--k 10] [--epochs 3]

The shop and model of benchmarks/flavours/sim_shop.py (trained by `training.train` on the days before the
held-out ones). Cases: held-out sessions with a view of a product the model knows, one such view per session
drawn at random (seeded); the request holds the shopper's latest --history events up to that view, as a
client sends them, and `similar` is answered by the endpoint's engine (serving/lists/similar.py: the viewed
product's category and brand, ranked by learned product vectors and price band). Baselines, from the training
days: same-category popularity (the most viewed products of the viewed product's category) and random
same-category products (seeded); the model's `next` ranking for reference. Each list leaves the viewed
product out. Measures over the k slots:
  - latent category / favourite brand: share of the slots holding a product of one of the shopper's latent
    categories / favourite brands (oracle_tastes.parquet);
  - HitRate@k: the shopper views, carts or buys one of the listed products later in the held-out days.
95% intervals by a bootstrap over cases (200 draws, the same for every method).
"""
from __future__ import annotations


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


def evaluate(data: Shop, bundle, seed: int, n_cases: int, k: int, history: int) -> dict:
    from serving.api_types import Filters, ModelIdentity
    from serving.engine import SignalsEngine
    from serving.segments import load_rules
    from serving.settings import DEFAULT_SEGMENTS_CONFIG

    engine = SignalsEngine.from_bundle(bundle, ModelIdentity(name="benchmark", version=None, run_id=None),
                                       load_rules(DEFAULT_SEGMENTS_CONFIG))
    rng = np.random.default_rng(seed)
    known = set(engine.catalogue.encoder.products.tokens)
    views = data.test[(data.test["event_type"] == "view") & data.test["product_id"].isin(known)]
    anchors = views.groupby("session_id", sort=True).sample(1, random_state=seed)
    anchors = anchors.iloc[np.sort(rng.choice(len(anchors), min(n_cases, len(anchors)), replace=False))]
    events = pd.concat([data.train, data.test], ignore_index=True)
    by_user = dict(tuple(events[events["user_id"].isin(anchors["user_id"])].groupby("user_id", sort=False)))
    histories, later = [], []
    for user, ts, product in zip(anchors["user_id"], anchors["ts"], anchors["product_id"]):
        mine = by_user[user]
        histories.append(mine[mine["ts"] <= ts].tail(history).drop(columns="user_id"))
        after = mine[(mine["ts"] > ts) & (mine["ts"] >= data.cut)]
        later.append(set(after["product_id"]) - {product})
    moments = [t.to_pydatetime() for t in anchors["ts"]]

    attributes = product_attributes(events)
    trained_views = data.train[data.train["event_type"] == "view"]
    by_category = trained_views.groupby("category")["product_id"].agg(lambda p: p.value_counts().index.tolist())
    methods = {
        "similar": served_lists(engine, histories, moments, "similar", k, Filters()),
        "same-category popularity": [],
        "random same-category": [],
        "next (the model's ranking, reference)": served_lists(engine, histories, moments, "next", k + 1, Filters()),
    }
    for product, category in zip(anchors["product_id"], anchors["category"]):
        pool = [p for p in (by_category.get(category, []) if isinstance(category, str) else []) if p != product]
        methods["same-category popularity"].append(pool[:k])
        methods["random same-category"].append(list(rng.permutation(pool)[:k]) if pool else [])
    methods = {name: [[p for p in items if p != product][:k] for items, product in zip(lists, anchors["product_id"])]
               for name, lists in methods.items()}

    tastes, users = read_tastes(data), anchors["user_id"].tolist()
    draws = rng.integers(0, len(anchors), (BOOTSTRAP, len(anchors)))
    table = {}
    for name, lists in methods.items():
        per_case = taste_precision(lists, users, tastes, attributes, k)
        per_case[f"HitRate@{k}"] = np.array([bool(set(items) & seen) for items, seen in zip(lists, later)], float)
        table[name] = {measure: interval(values, draws) for measure, values in per_case.items()}
        table[name]["filled"] = float(np.mean([len(items) for items in lists]) / k)
    return {"cut": str(data.cut), "cases": len(anchors), "k": k, "methods": table}


def markdown(result: dict) -> str:
    k = result["k"]
    lines = [f"{result['cases']:,} held-out views from {result['cut'][:10]}, lists of {k}", "",
             f"| method | latent category | favourite brand | HitRate@{k} | slots filled |", "|---|---:|---:|---:|---:|"]
    return "\n".join(lines + method_rows(result))


def main() -> None:
    run_list_benchmark(__doc__, "held-out views evaluated (seeded draw)", evaluate, markdown)


if __name__ == "__main__":
    main()
