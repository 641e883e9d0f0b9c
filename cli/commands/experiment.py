"""Experiments served with `signals serve --experiment FILE`: read one out.

`signals experiment report --log DIR --events DIR` joins the assignment log (the JSON lines the server wrote
under the experiment's `log.dir`) with the canonical events table (a `signals load` or `signals simulate`
folder holding the shop's purchases), counting each shopper from their first exposure, in that exposure's
arm, and the purchases within --window-days after it. It prints per arm: shoppers, realised and configured
share, conversion and revenue per shopper with 95% intervals, and the difference to the control arm with
its 95% interval and p-value (Welch's t; scipy), plus the sample-ratio-mismatch chi-square test (p < 0.001:
the split is not the configured one, do not trust the comparison). Shoppers logged in several arms and
shoppers whose window does not lie inside the events are left out and counted. The readout is logged to
MLflow as a run of the experiment `session-signals-readouts` (readout.md, readout.json, readout.png).

examples:
  signals experiment report --log data/experiments/champion-vs-challenger --events data/loaded/shop
  signals experiment report --log DIR --events DIR --window-days 14 --experiment champion-vs-challenger
"""
from __future__ import annotations

import argparse

HELP = "read out an experiment: conversion and revenue per arm with intervals, logged to MLflow"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    report = sub.add_parser("report", help="join the assignment log with later purchases; per-arm readout",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("--log", required=True, metavar="DIR", help="the experiment's assignment log folder (log.dir)")
    report.add_argument("--events", required=True, metavar="DIR", help="canonical events folder (or events.parquet)")
    report.add_argument("--window-days", type=float, default=7.0,
                        help="purchases counted within this many days after the first exposure (default 7)")
    report.add_argument("--experiment", help="experiment name (default: the only one in the log)")
    report.add_argument("--tracking-uri", default="",
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)")
    report.add_argument("--no-mlflow", action="store_true", help="print the readout only")


def run(args: argparse.Namespace) -> int:
    from events.errors import UserFacingError
    from events.loaders import read_events
    from experiments.readout import read_out
    from experiments.tracking import default_inputs, log_readout

    if args.window_days <= 0:
        raise UserFacingError(f"--window-days {args.window_days:g}: must be positive")
    events = read_events(args.events, columns=["user_id", "ts", "event_type", "price"])
    readout = read_out(args.log, events, args.window_days, args.experiment)
    print(readout.markdown())
    if not args.no_mlflow:
        run_id = log_readout(readout, default_inputs(args.log, args.events), args.tracking_uri)
        print(f"\nlogged to MLflow: run {run_id} of experiment session-signals-readouts")
    return 0
