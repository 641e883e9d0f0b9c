"""Quality benchmark: the model beside every baseline, per task, on the same split of each dataset.

    .venv/bin/python benchmarks/quality/run.py [--only NAME ...] [--set key=value ...] [--shared ../shared/datasets]

(a) ~200k simulated events (with the oracle and model/oracle ratios), (b) Taobao even users,
(c) YooChoose 100k train_full/test, (d) UCI Online Retail I. Each dataset is loaded with `signals load`
(when missing), trained with its config in configs/, tracked in a private MLflow store
(benchmarks/quality/mlruns, git-ignored) and its comparison table written to
benchmarks/quality/results/<name>.md; the tables are what benchmarks/README.md quotes.
"""
from __future__ import annotations

import argparse
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
    args = parser.parse_args()
    signals = [sys.executable, "-m", "training.cli"]
    (HERE / "results").mkdir(exist_ok=True)
    for name in args.only or DATASETS:
        spec = DATASETS[name]
        for fmt, inputs, out in spec["load"]:
            if not (ROOT / out / "events.parquet").is_file():
                files = [str(args.shared / i) for i in inputs]
                subprocess.run([*signals, "load", "--format", fmt, *files, "--out", out], cwd=ROOT, check=True)
        started = time.perf_counter()
        result = subprocess.run(
            [*signals, "train", "--config", spec["config"], "train.progress_bar=false",
             f"tracking.uri=sqlite:///{HERE / 'mlruns' / 'mlflow.db'}", "tracking.register=false", *args.overrides],
            cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"{name}: training failed (exit {result.returncode})")
        table = result.stdout[result.stdout.index("| method"):].split("\nregistered")[0].split("\nMLflow:")[0]
        minutes = (time.perf_counter() - started) / 60
        text = f"## {name}\n\nconfig `{spec['config']}`; {minutes:.1f} min on this machine\n\n{table.strip()}\n"
        (HERE / "results" / f"{name}.md").write_text(text)
        print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
