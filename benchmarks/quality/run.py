"""Quality benchmark: the model beside every baseline, per task, on the same split of each dataset.

    .venv/bin/python benchmarks/quality/run.py [--only NAME ...] [--set key=value ...] [--shared ../shared/datasets]
    .venv/bin/python benchmarks/quality/run.py --only simulated-200k --events 3000 --set train.max_epochs=1 \
        --workdir /tmp/q --results /tmp/q/results --mlruns /tmp/q/mlruns      # a smoke run: no real data needed

(a) ~200k simulated events (with the oracle and model/oracle ratios), (b) Taobao even users,
(c) YooChoose 100k train_full/test, (d) UCI Online Retail I. Each dataset is loaded with `signals load`
(when missing), trained with its config in configs/, tracked in a private MLflow store
(benchmarks/quality/mlruns, git-ignored) and its comparison table written to
benchmarks/quality/results/<name>.md; the tables are what benchmarks/README.md quotes.
`signals` runs in --workdir (default: the repository root): loaded data (data/loaded/), the simulated
data (data/generated/) and checkpoints go there. --events changes the size of the simulated dataset only.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

DATASETS = {
    "simulated-200k": {"config": "configs/simulated-200k.yaml", "load": []},
    "taobao": {"config": "configs/taobao.yaml",
               "load": [("taobao", ["taobao/UserBehavior-even-users.csv"], "data/loaded/taobao")]},
    "yoochoose": {"config": "configs/yoochoose.yaml",
                  "load": [("yoochoose", ["yoochoose/yoochoose-clicks-100k_train_full.txt"], "data/loaded/yoochoose-train"),
                           ("yoochoose", ["yoochoose/yoochoose-clicks-100k_test.txt"], "data/loaded/yoochoose-test")]},
    "online-retail": {"config": "configs/online-retail.yaml",
                      "load": [("online-retail", ["online-retail/online_retail_I_2010-2011.parquet"], "data/loaded/online-retail")]},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(DATASETS), help="datasets to run (default: all)")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="key=value",
                        help="extra config override for every run (repeatable)")
    parser.add_argument("--events", type=int, help="simulated events of simulated-200k (default: its config's 200,000)")
    parser.add_argument("--workdir", type=Path, default=ROOT, help="where `signals` runs (default: the repository root)")
    parser.add_argument("--results", type=Path, default=HERE / "results", help="folder of the <name>.md tables")
    parser.add_argument("--mlruns", type=Path, default=HERE / "mlruns", help="folder of the private MLflow store")
    args = parser.parse_args()
    signals = [sys.executable, "-m", "cli.main"]
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    args.mlruns.mkdir(parents=True, exist_ok=True)
    # `signals` runs in workdir; it must still import this checkout's packages.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for name in args.only or DATASETS:
        spec = DATASETS[name]
        for fmt, inputs, out in spec["load"]:
            if not (workdir / out / "events.parquet").is_file():
                files = [str(args.shared / i) for i in inputs]
                subprocess.run([*signals, "load", "--format", fmt, *files, "--out", out], cwd=workdir, env=env,
                               check=True)
        overrides = list(args.overrides)
        if args.events and not spec["load"]:
            overrides.append(f"data.simulate_events={args.events}")
        started = time.perf_counter()
        result = subprocess.run(
            [*signals, "train", "--config", str(ROOT / spec["config"]), "train.progress_bar=false",
             f"tracking.uri=sqlite:///{args.mlruns.resolve() / 'mlflow.db'}", "tracking.register=false", *overrides],
            cwd=workdir, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"{name}: training failed (exit {result.returncode})")
        table = result.stdout[result.stdout.index("| method"):].split("\nregistered")[0].split("\nMLflow:")[0]
        minutes = (time.perf_counter() - started) / 60
        changed = f" with {' '.join(overrides)}" if overrides else ""
        text = f"## {name}\n\nconfig `{spec['config']}`{changed}; {minutes:.1f} min on this machine\n\n{table.strip()}\n"
        (args.results / f"{name}.md").write_text(text)
        print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
