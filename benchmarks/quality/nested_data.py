"""A dataset without its test window, for choices that the validation split cannot judge.

    PYTHONPATH=. .venv/bin/python benchmarks/quality/nested_data.py data/generated/sim-100000-seed7-h7 \\
        /tmp/nest/demo [--test-days 7]
    PYTHONPATH=. .venv/bin/python benchmarks/quality/ablate.py --refit --set data.path=/tmp/nest/demo \\
        --dataset nested-demo --name default+refit --seeds 1 2

The refit on train + validation (`train.refit`) changes no validation figure: it only changes the model
that the test window sees. To choose it without looking at the test window, the events from the start of the
test window (as `split.test_days` counts it back from the last event) onwards are dropped; in the rest, the
split counts back again, so the nested run is tested on the days just before the real test window (for the
simulated shops: the real validation week plus the last training day, as the split floors to midnight) and
validated on days of the real training window. Nothing of the real test window is read.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from events.source import EVENTS_FILE, FINISHED_MARKERS
from training.config import SplitConfig
from training.labels import split_dates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="a folder from `signals simulate` or `signals load`")
    ap.add_argument("out", type=Path, help="the folder written (events.parquet and the source's finished marker)")
    ap.add_argument("--test-days", type=float, default=SplitConfig.test_days, help="the split.test_days of the runs")
    ap.add_argument("--val-days", type=float, default=SplitConfig.val_days, help="the split.val_days of the runs")
    args = ap.parse_args()
    split = SplitConfig(val_days=args.val_days, test_days=args.test_days)
    events = pq.read_table(args.source / EVENTS_FILE)
    dates = split_dates(events.select(["ts"]).to_pandas(), split)
    start = pa.scalar(dates.test_start.to_pydatetime(), type=events.schema.field("ts").type)
    kept = events.filter(pc.less(events["ts"], start))
    args.out.mkdir(parents=True, exist_ok=True)
    pq.write_table(kept, args.out / EVENTS_FILE)
    for marker in FINISHED_MARKERS:  # what tells the loader the folder is complete
        if (args.source / marker).is_file():
            shutil.copy(args.source / marker, args.out / marker)
    nested = split_dates(kept.select(["ts"]).to_pandas(), split)
    print(json.dumps({"events": events.num_rows, "kept": kept.num_rows, "real_test_start": str(dates.test_start),
                      "nested_val_start": str(nested.val_start), "nested_test_start": str(nested.test_start)}))


if __name__ == "__main__":
    main()
