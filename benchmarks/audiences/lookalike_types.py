"""Do lookalikes resemble their seeds? On simulated data every customer's latent traits are known: its
"type" here is its main interest category (the slot with the largest browse weight, events/simulator/
customers.py). Compares how often a lookalike shares the type of its nearest seed with how often a random
customer shares the type of a random seed.

The traits are not written by the simulator; they are drawn again exactly as it drew them (block b of
customers from the random stream (seed, 1, b), with the block sizes the simulator chose, replayed from
the per-user event counts), so this needs the simulated folder and, for `--events` runs, its target.

    python -m benchmarks.audiences.lookalike_types SIM_DIR SCORE_OUT [--target-events N]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from events.config_io import from_dict
from events.simulator.block import BLOCK_STREAM
from events.simulator.catalogue import build_catalogue
from events.simulator.config import SimulatorConfig
from events.simulator.customers import draw_customers
from events.simulator.daily_clock import DailyClock
from events.simulator.simulation import CATALOGUE_STREAM, _next_block_size


class _Done:  # what _next_block_size reads of the simulator's running summary
    def __init__(self, users: int, events: int):
        self.users, self.events = users, events


def main_category(sim_dir: Path, target_events: int | None) -> pd.Series:
    """user_id -> main interest category (catalogue index) of every simulated customer."""
    config = from_dict(SimulatorConfig, json.loads((sim_dir / "simulation.json").read_text())["config"])
    catalogue = build_catalogue(config.catalogue, np.random.default_rng([config.seed, CATALOGUE_STREAM]))
    clock = DailyClock(config.visits.hourly_profile, config.visits.utc_offset_hours)
    users = pd.read_parquet(sim_dir / "events.parquet", columns=["user_id"])["user_id"]
    per_user = np.bincount(users.str[1:].astype(int).to_numpy())  # ids are u<number>, numbered from 0
    types, done_users, done_events, block = [], 0, 0, 0
    while True:
        n = _next_block_size(config, _Done(done_users, done_events), target_events)
        if n == 0 or done_users >= len(per_user):
            break
        customers = draw_customers(n, catalogue, clock, config, np.random.default_rng([config.seed, BLOCK_STREAM, block]))
        main_slot = customers.slot_weight.argmax(axis=1)
        types.append(customers.slot_category[np.arange(n), main_slot])
        done_events += int(per_user[done_users:done_users + n].sum())
        done_users += n
        block += 1
    kinds = np.concatenate(types)
    return pd.Series(kinds, index=[f"u{i:08d}" for i in range(len(kinds))])


def compare(types: pd.Series, out: Path) -> dict:
    lookalikes = pd.read_parquet(out / "audiences" / "lookalikes.parquet")
    seeds = pd.read_parquet(out / "audiences" / "lookalike_seeds.parquet")["user_id"]
    customers = pd.read_parquet(out / "customers.parquet", columns=["user_id"])["user_id"]
    same = (types[lookalikes["user_id"]].to_numpy() == types[lookalikes["nearest_seed"]].to_numpy()).mean()
    others = customers[~customers.isin(set(seeds))]
    # A random non-seed and a random seed share a type with probability sum_t p_other(t) p_seed(t).
    p_other = types[others].value_counts(normalize=True)
    p_seed = types[seeds].value_counts(normalize=True)
    chance = float((p_other * p_seed.reindex(p_other.index, fill_value=0)).sum())
    return {"lookalikes": len(lookalikes), "seeds": len(seeds), "customers": len(customers),
            "types": int(types.nunique()), "lookalike_shares_nearest_seed_type": round(float(same), 4),
            "random_pair_shares_type": round(chance, 4), "lift": round(float(same) / chance, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sim_dir", type=Path)
    parser.add_argument("score_out", type=Path)
    parser.add_argument("--target-events", type=int, help="the --events the shop was simulated with (if any)")
    args = parser.parse_args()
    print(json.dumps(compare(main_category(args.sim_dir, args.target_events), args.score_out), indent=2))


if __name__ == "__main__":
    main()
