"""Write a trends table: the most bought (or viewed) products of the last N days, per category, per brand
and shop-wide, as of a moment. The endpoint's `trending` list reads it (`SIGNALS_TRENDS=DIR`) and picks up
a newer table written to the same folder within a second, without a restart; every answer names the
table's as-of. Recompute it as often as popularity should move (e.g. hourly, from the latest events):
no retraining is involved.

written to --out:
  trends.parquet   scope (category | brand | shop), key (the category or brand), rank, product_id, category,
                   brand, price (latest in the window), purchases, views; the best 100 of each key. The as-of,
                   days and ranking are in the file's metadata; the file is replaced atomically.

examples:
  signals trends --events data/generated/sim --days 7 --out data/trends
  signals trends --events data/loaded/rees46 --days 10 --by views --as-of 2019-10-08T00:00:00Z --out data/trends
"""
from __future__ import annotations

import argparse

HELP = "write the trends table (most bought/viewed of the last N days) that the endpoint's `trending` reads"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", required=True, metavar="DIR",
                   help="canonical events (a folder from `signals load`/`simulate`, or its events.parquet)")
    p.add_argument("--days", type=float, default=7.0, help="window length in days before --as-of (default 7)")
    p.add_argument("--by", default="purchases", choices=("purchases", "views"),
                   help="rank by purchases (default) or views; the other count breaks ties")
    p.add_argument("--as-of", metavar="TIME", help="end of the window, ISO 8601 (naive = UTC), exclusive; default: "
                   "just after the table's last event")
    p.add_argument("--out", required=True, metavar="DIR", help="folder of trends.parquet (the file is replaced)")


def run(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from audiences.event_table import parse_as_of
    from events.loaders import read_events
    from events.trends import compute_trends, write_trends

    log = logging.getLogger("signals.trends")
    as_of = parse_as_of(args.as_of, None)
    events = read_events(args.events, columns=["ts", "event_type", "product_id", "category", "brand", "price"])
    table, info = compute_trends(events, args.days, args.by, as_of)
    path = write_trends(table, info, Path(args.out))
    log.info("trends of %d events in the %g days before %s, ranked by %s: %d products in %d categories and %d "
             "brands -> %s", info.events, info.days, info.as_of, info.by, int((table["scope"] == "shop").sum()),
             table.loc[table["scope"] == "category", "key"].nunique(),
             table.loc[table["scope"] == "brand", "key"].nunique(), path)
    return 0
