"""One block of customers: simulated, scored by the oracles and turned into Arrow tables."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from events.schema import CANONICAL_SCHEMA
from events.simulator.catalogue import Catalogue
from events.simulator.complements import COMPLEMENT_STREAM, Complements, EventRows, add_accessory_events
from events.simulator.config import SimulatorConfig
from events.simulator.customers import draw_customers
from events.simulator.daily_clock import DailyClock
from events.simulator.oracle_churn import churn_oracle
from events.simulator.oracle_next import top_next_products
from events.simulator.oracle_tastes import tastes_table
from events.simulator.treatment import TREATMENT_STREAM, Treatments, treatment_tables
from events.simulator.visits import US_PER_DAY, simulate_visits
from events.simulator.writer import (
    CHURN_SCHEMA, INTENT_SCHEMA, NEXT_SCHEMA, BlockTables, CatalogueColumns, list_column, session_ids, user_ids,
)

BLOCK_STREAM = 1
"""Block b draws from the random stream (seed, BLOCK_STREAM, b); the catalogue from (seed, 0)."""


@dataclass
class Block:
    """One block's tables plus, per table row, the block-local customer (tables are sorted by it)."""

    tables: BlockTables
    row_user: dict[str, np.ndarray]
    event_type: np.ndarray
    event_session: np.ndarray
    product: np.ndarray
    n_users: int

    def head(self, n_users: int) -> Block:
        """The block cut to its first n_users customers."""
        counts = {name: int(np.searchsorted(users, n_users)) for name, users in self.row_user.items()}
        n_events = counts["events"]
        return Block(
            tables=BlockTables(**{name: getattr(self.tables, name).slice(0, counts[name]) for name in counts}),
            row_user={name: users[:counts[name]] for name, users in self.row_user.items()},
            event_type=self.event_type[:n_events], event_session=self.event_session[:n_events],
            product=self.product[:n_events], n_users=n_users,
        )


def simulate_block(index: int, first_user: int, n_users: int, catalogue: Catalogue, columns: CatalogueColumns,
                   clock: DailyClock, config: SimulatorConfig, start_us: int,
                   complements: Complements | None = None) -> Block:
    """Customers first_user .. first_user + n_users - 1 (block number `index`); start_us is the
    simulation start in microseconds since the epoch; with `complements`, shoppers go on to the accessories
    of the main items they buy (events/simulator/complements.py)."""
    rng = np.random.default_rng([config.seed, BLOCK_STREAM, index])
    customers = draw_customers(n_users, catalogue, clock, config, rng)
    treatments = (Treatments(customers, config, np.random.default_rng([config.seed, TREATMENT_STREAM, index]))
                  if config.treatment.enabled else None)
    activity = simulate_visits(customers, catalogue, clock, config, rng, treatments)
    sessions, events = activity.sessions, activity.events

    uid_strings = user_ids(first_user, n_users)
    uids = pa.array(uid_strings, pa.string())
    sids = session_ids(uid_strings, sessions.user, sessions.number)
    rows = EventRows(session=events.session, step=events.step, ts_us=events.ts_us,
                     event_type=events.event_type.astype(np.int64), product=customers.choices.product[events.choice])
    if complements is not None:
        rows, _ = add_accessory_events(rows, sessions, complements, config,
                                       np.random.default_rng([config.seed, COMPLEMENT_STREAM, index]))
    event_user = sessions.user[events.session]   # of the funnel's events, which the oracles describe
    row_event_user = sessions.user[rows.session]
    events_table = pa.Table.from_arrays([
        uids.take(row_event_user),
        sids.take(rows.session),
        pa.array(start_us + rows.ts_us, pa.int64()).cast(CANONICAL_SCHEMA.field("ts").type),
        columns.event_type.take(rows.event_type),
        columns.product_id.take(rows.product),
        columns.category.take(rows.product),
        columns.brand.take(rows.product),
        columns.price.take(rows.product),
    ], schema=CANONICAL_SCHEMA)

    intent_rows = np.flatnonzero(events.before_purchase)
    intent = pa.Table.from_arrays([
        sids.take(events.session[intent_rows]),
        pa.array(events.step[intent_rows], pa.int32()),
        pa.array(events.purchase_chance[intent_rows], pa.float64()),
    ], schema=INTENT_SCHEMA)

    mixture = events.next_mixture
    top = top_next_products(mixture, event_user[mixture.event], customers, config.oracle.next_top_k)
    next_table = pa.Table.from_arrays([
        sids.take(events.session[mixture.event]),
        pa.array(events.step[mixture.event], pa.int32()),
        list_column(top.offsets, columns.product_id.take(top.product)),
        list_column(top.offsets, pa.array(top.probability, pa.float64())),
    ], schema=NEXT_SCHEMA)

    churn_user, cutoff_day, p_churn = churn_oracle(activity, customers, config)
    churn = pa.Table.from_arrays([
        uids.take(churn_user),
        pa.array(start_us + cutoff_day * US_PER_DAY, pa.int64()).cast(CHURN_SCHEMA.field("cutoff").type),
        pa.array(np.full(len(churn_user), config.oracle.churn_horizon_days), pa.int32()),
        pa.array(p_churn, pa.float64()),
    ], schema=CHURN_SCHEMA)

    tables = BlockTables(events=events_table, intent=intent, next=next_table, churn=churn,
                         tastes=tastes_table(customers, catalogue, uids))
    row_user = {"events": row_event_user, "intent": event_user[intent_rows], "next": event_user[mixture.event],
                "churn": churn_user, "tastes": np.arange(n_users)}
    if treatments is not None:
        decisions = treatments.decisions()
        tables.treatments, tables.uplift = treatment_tables(
            decisions, uids, session_ids(uid_strings, decisions.user, decisions.number), start_us)
        row_user["treatments"] = row_user["uplift"] = decisions.user
    return Block(
        tables=tables, row_user=row_user,
        event_type=rows.event_type, event_session=rows.session, product=rows.product, n_users=n_users,
    )
