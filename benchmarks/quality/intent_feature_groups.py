"""Diagnostic: which of LightGBM's intent feature groups carry its lead over the model (issue 15).

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quality/intent_feature_groups.py [--set key=value ...]

The demo data (or any run config), the intent baseline of `signals train` (`fit_predict_intent`, seed 42) refitted
with one group of its features blanked out (NaN: LightGBM cannot split on them), scored on the TEST points.
Also: the share of TEST points whose shopper has more events of history than the model's window holds.
A diagnosis, not a selection: nothing is chosen from these figures.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from events.config_io import load_config
from training.baselines.intent import fit_predict_intent, intent_features
from training.config import TrainRunConfig
from training.in_memory import prepare_in_memory
from training.labels import TEST
from training.metrics import binary_metrics

GROUPS = {
    "all features": [],
    "- customer history (prev_purchases, prev_events, prev_sessions, recency_s)":
        ["prev_purchases", "prev_events", "prev_sessions", "recency_s"],
    "- prev_purchases": ["prev_purchases"],
    "- prev_events, prev_sessions": ["prev_events", "prev_sessions"],
    "- recency_s": ["recency_s"],
    "- funnel and cart (funnel_depth, current_stage, cart_adds, cart_removes)":
        ["funnel_depth", "current_stage", "cart_adds", "cart_removes"],
    "- session time (time_in_session_s, seconds_since_prev_event)": ["time_in_session_s", "seconds_since_prev_event"],
    "- distinct products and categories": ["distinct_products", "distinct_categories"],
    "- price statistics (price, price_mean, price_spread, price_std, price_rel)":
        ["price", "price_mean", "price_spread", "price_std", "price_rel"],
    "- clock (hour, weekday)": ["hour", "weekday"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(TrainRunConfig, args.config, [*args.overrides, "train.progress_bar=false"])
    labels = prepare_in_memory(cfg).labels
    X = intent_features(labels.events)
    rows = np.flatnonzero((labels.intent_split == TEST) & (labels.intent >= 0))
    y = labels.intent[rows].astype(np.int64)
    history = (X["prev_events"].fillna(0) + X["events_so_far"]).to_numpy()[rows]
    print(json.dumps({"test_points": len(rows), "window": cfg.model.max_len,
                      "share_with_longer_history": round(float((history > cfg.model.max_len).mean()), 3)}))
    for name, blank in GROUPS.items():
        Xs = X.copy()
        Xs[blank] = np.nan
        m = binary_metrics("intent", y, fit_predict_intent(labels, 42, Xs).reindex(rows).to_numpy())
        print(json.dumps({"features": name, "intent_pr_auc": round(m["intent_pr_auc"], 4),
                          "intent_roc_auc": round(m["intent_roc_auc"], 4)}), flush=True)


if __name__ == "__main__":
    main()
