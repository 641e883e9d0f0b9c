"""Simulate a shop's customers and write their event stream, with the true answers (oracles) to the
three tasks computed from the simulator's own model.

Customers have latent category and brand tastes, a price sensitivity, a purchase propensity that drifts
over time, visit habits with dormant spells and a churn hazard; sessions move through a funnel (browse,
detail views, price comparison within a category, cart, remove, purchase or leave); visits follow a
daily rhythm with an evening peak. Defaults are calibrated on the real samples in ../shared/datasets
(see events/simulator/config.py). The same seed gives byte-identical files.

written to --out:
  events.parquet          canonical events, sorted by user_id then ts
  oracle_intent.parquet   session_id, step, p_convert: true chance that the session still has a purchase
  oracle_next.parquet     session_id, step, top_products, top_probs: true top-k of the next event's product
  oracle_churn.parquet    user_id, cutoff (every midnight), horizon_days, p_churn: true chance of no
                          purchase in (cutoff, cutoff + horizon]
  oracle_tastes.parquet   user_id, categories, category_weights, favourite_brands, price_sensitivity: latent tastes
  simulation.json         the config used and a summary (events, users, sessions, rates)
  with treatment.enabled=true also (a message sent at random mid-session; events/simulator/treatment.py):
  treatments.parquet      user_id, session_id, step, ts, treated: the randomised assignment at each decision point
  oracle_uplift.parquet   session_id, step, p_control, p_treated, uplift, do_not_disturb, group: the true effect there
  with complements.main_share=0.3 (say) also (accessories bought after a main item; events/simulator/complements.py):
  complements.parquet     main_product, accessory_product, strength: the true complementary relations
The oracles condition on the simulator's full state (latent traits included): an upper bound for models.

examples:
  signals simulate --events 200000 --seed 1 --out data/generated/sim
  signals simulate --out data/generated/small n_users=500 days=30 oracle.churn_horizon_days=7
  signals simulate --events 10000000 --out data/generated/sim10m --config my-shop.yaml
  signals simulate --events 150000 --out data/generated/treated treatment.enabled=true treatment.share=0.3
"""
from __future__ import annotations

import argparse
import sys

HELP = "simulate shoppers: events plus the true intent, churn and next-product answers"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", type=int, metavar="N",
                   help="about N events: customers are generated in blocks until their events reach N, and the "
                        "last block is cut at the customer whose events reach N (so the count lands within one "
                        "customer's events of N); the config's n_users is then ignored")
    p.add_argument("--seed", type=int, help="random seed (default: the config's seed, 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (files in it are replaced)")
    p.add_argument("--config", metavar="FILE",
                   help="YAML file of simulator settings: seed, start_date, days, n_users, users_per_block and "
                        "the sections catalogue, customers, visits, funnel, oracle")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="setting overrides, e.g. days=90 funnel.cart_rate=0.2; unknown keys are errors")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from events.errors import UserFacingError
    from events.simulator import load_simulator_config, simulate

    if args.events is not None and args.events < 1:
        raise UserFacingError("--events must be at least 1")
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    config = load_simulator_config(args.config, overrides)
    simulate(config, args.out, target_events=args.events, progress=not args.no_progress and sys.stderr.isatty())
    return 0
