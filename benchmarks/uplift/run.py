"""Uplift benchmark (issue 14, point 5): per seed, a simulated shop with a randomised mid-session treatment,
the default model trained on it, then `signals uplift` with every design, on the frozen and on the taught
encoder: the row "model" is the default (the wide head on the frozen encoder), "model_chosen_on_validation"
what the best validation transformed-outcome MSE among all of them would have kept; beside them random
targeting, "target the highest intent", a LightGBM T-learner and the oracle, on the test split.

    .venv/bin/python benchmarks/uplift/run.py --set train.max_epochs=5                   # benchmarks/README.md
    .venv/bin/python benchmarks/uplift/run.py --events 150000 --set train.max_epochs=5   # a smaller shop
    .venv/bin/python benchmarks/uplift/run.py --events 4000 --seeds 1 --set train.max_epochs=1 --workdir /tmp/u

Each seed: `signals simulate --events N --seed S treatment.enabled=true`, `signals train` on it (seed S, a
private MLflow store under --workdir), `signals uplift` on the trained bundle. Writes --workdir/seed-S/ and
the table of means and spreads over the seeds to --results (default benchmarks/uplift/RESULTS.md).
With --reuse-models, a seed whose shop and base model are already under --workdir only gets `signals uplift`
again (same shops and base models: a change to the uplift heads measured alone).
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
log = logging.getLogger("uplift-benchmark")

TRAIN_SETTINGS = ["split.val_days=7", "split.test_days=14", "baselines.enabled=false", "train.progress_bar=false",
                  "train.max_epochs=12", "train.patience=3"]
METHODS = ("oracle", "features_fit_to_true_uplift", "model", "model_chosen_on_validation", "model_two_heads", "model_shift", "model_segments",
           "model_wide", "model_two_heads_taught", "model_shift_taught", "model_segments_taught", "model_wide_taught",
           "lightgbm_t_learner", "highest_intent", "random")
FIGURES = ("qini", "true_qini", "true_qini_over_oracle", "uplift_at_10", "true_uplift_at_10", "auuc")


def one_seed(seed: int, events: int, workdir: Path, extra: list[str], reuse: bool) -> dict:
    import mlflow

    from events.config_io import load_config
    from events.simulator import load_simulator_config, simulate
    from registry import download_bundle
    from training.config import TrainRunConfig
    from training.train import train
    from models.uplift import UPLIFT_DESIGNS
    from training.uplift import DEFAULT_DESIGN, UpliftRunConfig, fit_uplift
    from training.uplift_finetune import FineTuneConfig

    here = workdir / f"seed-{seed}"
    data = here / "data"
    store = f"sqlite:///{here / 'mlflow.db'}"
    bundle = here / "base" / "bundle"
    trained_s, intent_pr_auc = None, None
    if reuse and bundle.is_dir():
        log.info("seed %d: reusing the shop and the base model in %s", seed, here)
    else:
        simulate(load_simulator_config(None, [f"seed={seed}", "treatment.enabled=true"]), data, target_events=events)
        started = time.perf_counter()
        result = train(load_config(TrainRunConfig, None, [f"data.path={data}", f"train.seed={seed}", f"tracking.uri={store}",
                                                          f"output_dir={here / 'runs'}", *TRAIN_SETTINGS, *extra]))
        trained_s, intent_pr_auc = time.perf_counter() - started, result["metrics"]["model"].get("intent_pr_auc")
        mlflow.set_tracking_uri(store)
        bundle, _ = download_bundle("session-signals", "challenger", here / "base")
    started = time.perf_counter()
    # Every design, on the frozen and the taught encoder: the default (`signals uplift`: the wide head, frozen) is
    # the row "model"; what selection on validation among all of them would have kept is beside it.
    compare = UpliftRunConfig(seed=seed, designs=list(UPLIFT_DESIGNS), fine_tune=FineTuneConfig(enabled=True))
    summary = fit_uplift(data, bundle, here / "uplift", compare)
    test = summary["test"]
    test["model_chosen_on_validation"], test["model"] = test["model"], test[f"model_{DEFAULT_DESIGN}"]
    summary["seconds"] = {"train": trained_s, "uplift": time.perf_counter() - started}
    summary["intent_pr_auc"] = intent_pr_auc
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
              f"decision points per seed: {json.dumps(counts)}",
              "", "validation, mean over seeds (what a design is chosen on; never the test points):", "",
              "| candidate | qini | tau_mse |", "|---|---|---|"]
    for name in runs[min(runs)]["validation"]:
        figures = [r["validation"][name] for r in runs.values()]
        lines.append(f"| {name} | {statistics.mean(f['qini'] for f in figures):.5f} | "
                     f"{statistics.mean(f['tau_mse'] for f in figures):.5f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra training overrides")
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "generated" / "uplift-benchmark")
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    parser.add_argument("--reuse-models", action="store_true",
                        help="where --workdir already holds a seed's shop and base model, fit only the uplift heads again")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("lightning", "lightning.pytorch", "mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    runs = {}
    for seed in args.seeds:
        runs[seed] = one_seed(seed, args.events, args.workdir, args.set, args.reuse_models)
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
