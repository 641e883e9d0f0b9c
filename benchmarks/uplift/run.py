"""Uplift benchmark (issue 14, point 5): per seed, a simulated shop with a randomised mid-session treatment,
the default model trained on it, then `signals uplift` (every design fitted, on the frozen and on the taught
encoder, the best on the validation transformed-outcome MSE kept)
beside random targeting, "target the highest intent", a LightGBM T-learner and the oracle, on the test split.

    .venv/bin/python benchmarks/uplift/run.py                          # the figures of benchmarks/README.md
    .venv/bin/python benchmarks/uplift/run.py --events 4000 --seeds 1 --set train.max_epochs=1 --workdir /tmp/u

Each seed: `signals simulate --events N --seed S treatment.enabled=true`, `signals train` on it (seed S, a
private MLflow store under --workdir), `signals uplift` on the trained bundle. Writes --workdir/seed-S/ and
the table of means and spreads over the seeds to --results (default benchmarks/uplift/RESULTS.md).
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TRAIN_SETTINGS = ["split.val_days=7", "split.test_days=14", "baselines.enabled=false", "train.progress_bar=false",
                  "train.max_epochs=12", "train.patience=3"]
METHODS = ("oracle", "features_fit_to_true_uplift", "model", "model_two_heads", "model_shift", "model_segments",
           "model_two_heads_taught", "model_shift_taught", "model_segments_taught", "lightgbm_t_learner", "highest_intent", "random")
FIGURES = ("qini", "true_qini", "true_qini_over_oracle", "uplift_at_10", "true_uplift_at_10", "auuc")


def one_seed(seed: int, events: int, workdir: Path, extra: list[str]) -> dict:
    import mlflow

    from events.config_io import load_config
    from events.simulator import load_simulator_config, simulate
    from registry import download_bundle
    from training.config import TrainRunConfig
    from training.train import train
    from training.uplift import UpliftRunConfig, fit_uplift

    here = workdir / f"seed-{seed}"
    data = here / "data"
    simulate(load_simulator_config(None, [f"seed={seed}", "treatment.enabled=true"]), data, target_events=events)
    store = f"sqlite:///{here / 'mlflow.db'}"
    started = time.perf_counter()
    result = train(load_config(TrainRunConfig, None, [f"data.path={data}", f"train.seed={seed}", f"tracking.uri={store}",
                                                      f"output_dir={here / 'runs'}", *TRAIN_SETTINGS, *extra]))
    trained_s = time.perf_counter() - started
    mlflow.set_tracking_uri(store)
    bundle, _ = download_bundle("session-signals", "challenger", here / "base")
    started = time.perf_counter()
    summary = fit_uplift(data, bundle, here / "uplift", UpliftRunConfig(seed=seed))
    summary["seconds"] = {"train": trained_s, "uplift": time.perf_counter() - started}
    summary["intent_pr_auc"] = result["metrics"]["model"].get("intent_pr_auc")
    return summary


def aggregate(runs: dict[int, dict]) -> str:
    def cell(method: str, figure: str) -> str:
        values = [r["test"][method][figure] for r in runs.values() if figure in r["test"].get(method, {})]
        if not values:
            return ""
        spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
        return f"{statistics.mean(values):.4f}{spread}"

    lines = ["| method | " + " | ".join(FIGURES) + " |", "|---" * (len(FIGURES) + 1) + "|"]
    lines += [f"| {m} | " + " | ".join(cell(m, f) for f in FIGURES) + " |" for m in METHODS]
    chosen = {s: r["chosen"] for s, r in runs.items()}
    counts = {s: r["counts"] for s, r in runs.items()}
    by_qini = {s: max(r["validation"], key=lambda d: r["validation"][d]["qini"]) for s, r in runs.items()}
    moved = {s: {k: round(v, 4) for k, v in r["fine_tune"].items()} for s, r in runs.items() if r.get("fine_tune")}
    lines += ["", (f"seeds {sorted(runs)}; design chosen on validation {runs[min(runs)].get('select_on')} per seed: "
                   f"{chosen}; validation Qini would have chosen {by_qini}"),
              (f"taught encoder per seed (epochs; mean |change| of the intent probability at the test points; intent "
               f"PR-AUC at the control arm's test points before and after): {moved}"),
              f"decision points per seed: {json.dumps(counts)}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra training overrides")
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "generated" / "uplift-benchmark")
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("lightning", "lightning.pytorch", "mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    runs = {}
    for seed in args.seeds:
        runs[seed] = one_seed(seed, args.events, args.workdir, args.set)
        (args.workdir / f"seed-{seed}" / "summary.json").write_text(json.dumps(runs[seed], indent=2))
    text = (f"# Uplift benchmark\n\n`python benchmarks/uplift/run.py --events {args.events} --seeds "
            f"{' '.join(map(str, args.seeds))}{''.join(' --set ' + s for s in args.set)}`: test split, mean ± sd over "
            f"seeds\n\n{aggregate(runs)}\n")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
