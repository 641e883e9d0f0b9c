"""Score every customer of a canonical event table in batch, as of a moment, into the files an
activation layer imports (CDPs, ad platforms, e-mail tools).

Each customer is scored exactly as POST /predict scores a request holding their events up to --as-of
(the same engine, filters and segment rules). Written to --out, atomically (a killed run leaves the
earlier output whole; report.json is written last):
  customers.parquet           one row per customer: purchase intent of the latest session, churn risk,
                              days since last event / purchase, orders, spend, RFM scores and segment,
                              top products (purchased ones excluded), top categories and brands, the
                              endpoint's segment labels, the audiences it is in, model name/version/run
  audiences/NAME.parquet      one file per audience with the fields an activation needs, and
  audiences/NAME.csv          its user ids for ad platforms: high_intent, cart_abandoners, browse_abandoners,
                              suppress_ads, outreach, dormant, rfm_<segment> (11), lookalike_seeds, lookalikes
  report.json                 input hash and rows, as-of, model, thresholds, lists, audience sizes, throughput
With --lists, customers.parquet also holds the endpoint's lists by purpose for each customer (the same
engine as /predict's `lists`, after the same filters): a column list_<name> of product ids per list asked,
best first, and list_notes saying why a list is short or empty. None by default (each list costs scoring
time); `trending` reads the table of `signals trends` given by --trends (default $SIGNALS_TRENDS).
An MLflow run (experiment session-signals-scoring) records the same, so every file traces to its model
and data. Thresholds: audiences/thresholds.yaml, changed with key=value overrides (right after EVENTS)
or --thresholds FILE.

examples:
  signals score data/generated/sim --out data/audiences
  signals score data/loaded/rees46 --out out/2026-03-02 --as-of 2026-03-02T00:00:00Z --model challenger
  signals score data/generated/sim rules.at_risk.min_churn_risk=0.7 rules.dormant.idle_days=90 --out out --model 3
  signals score data/generated/sim --out out --model path/to/bundle
  signals score data/generated/sim --out out --lists complementary=5,similar=5,people_like_you=5,recently_viewed=5
  signals score data/generated/sim --out out --lists trending=5,next=5 --trends data/trends
"""
from __future__ import annotations

import argparse

HELP = "score every customer in batch into customers.parquet and audience files"


def add_arguments(p: argparse.ArgumentParser) -> None:
    # One positional list: the overrides follow EVENTS directly (argparse reads positionals in one go, so
    # key=value after the options would be refused as unrecognized).
    p.usage = ("signals score EVENTS [key=value ...] --out DIR [--as-of TIME] [--model MODEL] [--model-name NAME]\n"
               "                     [--tracking-uri URI] [--thresholds FILE] [--lists NAME=K,...] [--trends PATH]")
    p.add_argument("inputs", nargs="+", metavar="EVENTS [key=value]",
                   help="canonical events (a folder from `signals load`/`simulate`, or its events.parquet), then "
                        "threshold overrides right after it, e.g. rules.at_risk.min_churn_risk=0.7 lookalikes.size=5000")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (replaced as a whole when the run finishes)")
    p.add_argument("--as-of", metavar="TIME", help="the scoring moment, ISO 8601 (naive = UTC); default: the table's "
                   "last event. Events after it are ignored")
    p.add_argument("--model", default="champion", help="registry alias (champion, challenger), version number, or a "
                   "bundle folder (default champion)")
    p.add_argument("--model-name", default="session-signals", help="registered model name (default session-signals)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)")
    p.add_argument("--thresholds", metavar="FILE", help="audience thresholds YAML (default audiences/thresholds.yaml)")
    p.add_argument("--lists", metavar="NAME=K,...", help="lists by purpose to write per customer, each with its "
                   "length (1..20): next, complementary, similar, trending, people_like_you, recently_viewed; "
                   "e.g. complementary=5,trending=5 (default: none)")
    p.add_argument("--trends", metavar="PATH", help="trends table for the trending list (`signals trends --out` "
                   "folder or its trends.parquet; default $SIGNALS_TRENDS; without one, trending is empty and "
                   "list_notes says why)")


def run(args: argparse.Namespace) -> int:
    import logging
    import tempfile
    from pathlib import Path

    from audiences.config import load_thresholds
    from audiences.event_table import EventTable, parse_as_of
    from audiences.lists import parse_lists
    from audiences.model_source import fetch_model
    from audiences.score import ScoreJob, score
    from audiences.tracking import log_scoring, scoring_run
    from events.trends import read_trends
    from serving.segments import load_rules
    from serving.settings import ServingSettings

    log = logging.getLogger("signals.score")
    # Everything that can be wrong is checked before any work: thresholds, table, as-of, model.
    events, *overrides = args.inputs
    thresholds = load_thresholds(Path(args.thresholds) if args.thresholds else None, overrides)
    lists = parse_lists(args.lists)
    serving = ServingSettings.from_env()  # the endpoint's segment labels and trends table, as the server would read them
    trends = Path(args.trends) if args.trends else serving.trends
    if trends is not None and "trending" in lists:
        read_trends(trends)  # a missing or foreign table is named now, not as empty lists at the end
    table = EventTable.open(Path(events))
    as_of = parse_as_of(args.as_of, table.ts_max)
    table.check_as_of(as_of)
    engine_rules = load_rules(serving.segments_config, serving.segment_overrides)
    with tempfile.TemporaryDirectory(prefix="signals-score-") as tmp:
        bundle, identity = fetch_model(args.model, args.model_name, args.tracking_uri or "", Path(tmp))
        log.info("scoring %s (%d events) as of %s with %s v%s", table.file, table.rows, as_of.isoformat(),
                 identity.name, identity.version)
        job = ScoreJob(table, as_of, bundle, identity, engine_rules, thresholds, Path(args.out), lists, trends)
        with scoring_run(args.tracking_uri or "", f"score-{table.file.parent.name}") as run_id:
            report = score(job, run_id)
            log_scoring(report, thresholds)
    print(summary(report))
    return 0


def summary(report: dict) -> str:
    lines = [(f"scored {report['customers_scored']} customers as of {report['as_of']} "
              f"({report['customers_per_second']:.0f}/s; {report['live_sessions']} live sessions; "
              f"{report['customers_without_events_before_as_of']} customers have no events before as-of) "
              f"with {report['model']['name']} v{report['model']['version']} into {report['output']}"),
             "audience sizes:"]
    lines += [f"  {name:<28} {size:>8}" for name, size in report["audiences"].items()]
    if report["empty_audiences"]:
        lines.append(f"empty with these thresholds: {', '.join(report['empty_audiences'])}")
    return "\n".join(lines)
