"""Load a shop's raw event files into the canonical event table.

Writes DIR/events.parquet (the canonical table), DIR/rejected.parquet (every rejected row: its original
values, `reason` and `source_row`) and DIR/load_report.json, and prints a summary. Rows read always equal
rows accepted plus rows rejected.

formats:
  rees46         REES46 multi-category store CSV (one file per month; several files may be given)
  taobao         Tianchi UserBehavior CSV; sessions cut by inactivity; fav -> wishlist
  yoochoose      RecSys 2015 clicks, plus the buys file as a second input (purchases with price)
  diginetica     CIKM Cup 2016 train-item-views.csv (`;`-separated)
  online-retail  UCI Online Retail (Parquet or CSV); lines without a customer, C-invoice cancellations,
                 non-product stock codes (POST, M, BANK CHARGES...) and exact duplicates rejected, each its own reason
  csv, parquet   any other shop, described by --mapping FILE.yaml (see events/loaders/mapping.py)

examples:
  signals load --format rees46 data/samples/rees46-2019-Oct-head.csv --out data/loaded/rees46
  signals load --format taobao UserBehavior.csv --out data/loaded/taobao --event-type fav=view
  signals load --format csv shop.csv --mapping shop.yaml --out data/loaded/shop
"""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "load raw event files (REES46, Taobao, YooChoose, Diginetica, Online Retail, CSV/Parquet + mapping)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, metavar="NAME",
                        help="rees46, taobao, yoochoose, diginetica, online-retail, csv or parquet")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="input file(s)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    parser.add_argument("--mapping", type=Path, metavar="FILE.yaml",
                        help="column mapping for --format csv/parquet")
    parser.add_argument("--session-gap-minutes", type=float, default=30.0, metavar="MIN",
                        help="inactivity that ends a session where the source has no session ids (default 30)")
    parser.add_argument("--keep-extra-types", action="store_true",
                        help="keep unmapped source event types instead of rejecting them")
    parser.add_argument("--event-type", action="append", default=[], metavar="SOURCE=CANONICAL",
                        help="map a source event type, e.g. fav=view (repeatable)")
    parser.add_argument("--ts-min", metavar="ISO", help="reject events before this time (default: the format's range)")
    parser.add_argument("--ts-max", metavar="ISO", help="reject events at or after this time")


def run(args: argparse.Namespace) -> int:
    from events.errors import UserFacingError
    from events.loaders import load_events

    event_types = {}
    for item in args.event_type:
        source, sep, target = item.partition("=")
        if not sep or not source or not target:
            raise UserFacingError(f"--event-type {item!r}: expected SOURCE=CANONICAL, e.g. fav=view")
        event_types[source] = target
    report = load_events(
        args.format,
        args.inputs,
        args.out,
        mapping=args.mapping,
        session_gap_minutes=args.session_gap_minutes,
        keep_extra_types=args.keep_extra_types,
        event_types=event_types,
        ts_min=args.ts_min,
        ts_max=args.ts_max,
    )
    print(report.summary())
    return 0
