"""How much of the simulated treatment effect the events reveal, without training the sequence model: a shop
simulated with the treatment on, then LightGBM fitted to the oracle's *true* uplift on the intent baseline's
session features (training/baselines/uplift.fit_predict_on_true_uplift), scored by the true Qini over the
oracle's. No outcome noise and no arms to contrast: roughly the best share of the oracle that any learner
reading these events can reach. Also prints each group's share and uplift, and "target the true intent"
(the oracle's own purchase chance without treatment), the best that intent targeting can do.

    .venv/bin/python benchmarks/uplift/ceiling.py --events 150000 --seeds 1 2 3 [--set treatment.KEY=VALUE ...]

Customers are split 60/20/20 (train/validation/test) by a hash of their id.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def one_seed(seed: int, events: int, overrides: list[str]) -> dict:
    import numpy as np
    import pandas as pd

    from events.simulator import load_simulator_config, simulate
    from training.baselines.intent import intent_features
    from training.baselines.uplift import fit_predict_on_true_uplift
    from training.uplift_data import UPLIFT_ORACLE_FILE, read_decision_points
    from training.uplift_metrics import true_metrics

    with tempfile.TemporaryDirectory(prefix="uplift-ceiling-") as tmp:
        data = Path(tmp)
        simulate(load_simulator_config(None, [f"seed={seed}", "treatment.enabled=true", *overrides]), data,
                 target_events=events)
        events_frame, points = read_decision_points(data)
        groups = pd.read_parquet(data / UPLIFT_ORACLE_FILE, columns=["session_id", "step", "group"])
    points = points.merge(groups, on=["session_id", "step"], validate="one_to_one")
    bucket = np.array([zlib.crc32(u.encode()) % 10 for u in events_frame["user_id"].to_numpy()[points["row"]]])
    train, val, test = (np.flatnonzero(m) for m in (bucket < 6, (bucket >= 6) & (bucket < 8), bucket >= 8))
    features = intent_features(events_frame).iloc[points["row"].to_numpy()]
    tau = points["true_uplift"].to_numpy()
    fitted = fit_predict_on_true_uplift(features, tau, train, val, test, seed)
    oracle = true_metrics(tau[test], tau[test])["true_qini"]
    by_group = points.groupby("group")["true_uplift"].agg(["size", "mean"])
    return {
        "features_fit_to_true_uplift": true_metrics(fitted, tau[test])["true_qini"] / oracle,
        "true_intent": true_metrics(points["p_control"].to_numpy()[test], tau[test])["true_qini"] / oracle,
        "groups": {g: (r["size"] / len(points), r["mean"]) for g, r in by_group.iterrows()},
        "points": len(points), "mean_uplift": float(tau.mean()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="simulator overrides")
    args = parser.parse_args()
    runs = [one_seed(seed, args.events, args.set) for seed in args.seeds]
    for r in runs:
        shares = ", ".join(f"{g} {s:.2f} (mean uplift {m:+.3f})" for g, (s, m) in r["groups"].items())
        print(f"{r['points']} points, mean uplift {r['mean_uplift']:.4f}; {shares}")
    for figure in ("features_fit_to_true_uplift", "true_intent"):
        values = [r[figure] for r in runs]
        spread = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
        print(f"{figure}: true Qini / oracle {statistics.mean(values):.3f}{spread}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
