"""Complementary products: main items with accessories that shoppers buy after them (camera -> case, battery).

A share of the products (`complements.main_share`, 0 = off) are main items. Each category's main items
draw their accessories from a few other categories (`accessory_categories`), each accessory a product of
such a category by its popularity, with a strength uniform in [strength_min, 1]: the truth, written to
complements.parquet (main_product, accessory_product, strength).

After the last funnel event of a session that bought main items, the shopper goes on to the accessories
of what they bought (not those already bought in the session): views each with chance view_rate * strength,
carts a viewed one with chance buy_rate, and checks the carted ones out together, with the funnel's dwell
times. The events are appended to the session and cut where the customer's next session would begin.

Everything else is drawn as without complements (the accessory draws have their own random stream), so
the funnel's events, the visits and the oracles are unchanged: intent rows cover steps before the first
purchase (accessory events follow one), the churn oracle depends on whether a session had a purchase (it
had), and oracle_next describes the funnel's next event: an accessory event and the funnel event just
before one have no row there.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from events.simulator.catalogue import Catalogue
from events.simulator.complements_config import ComplementConfig
from events.simulator.config import SimulatorConfig
from events.simulator.funnel import (
    CART_EVENT,
    CHECKOUT_DWELL_LOG_SD,
    PURCHASE_EVENT,
    US_PER_SECOND,
    VIEW_EVENT,
)
from events.simulator.visits import Sessions

COMPLEMENT_STREAM = 3
"""The truth comes from the random stream (seed, COMPLEMENT_STREAM); block b's accessory events from
(seed, COMPLEMENT_STREAM, b)."""
COMPLEMENTS_FILE = "complements.parquet"
COMPLEMENTS_SCHEMA = pa.schema([
    pa.field("main_product", pa.string(), nullable=False),
    pa.field("accessory_product", pa.string(), nullable=False),
    pa.field("strength", pa.float64(), nullable=False),
])


@dataclass
class Complements:
    main: np.ndarray        # (A,) catalogue index of the main product, ascending
    accessory: np.ndarray   # (A,) catalogue index of the accessory
    strength: np.ndarray    # (A,)
    start: np.ndarray       # (P + 1,) product p's accessories are rows start[p]:start[p + 1]

    def table(self, product_ids: pa.Array) -> pa.Table:
        return pa.Table.from_arrays([product_ids.take(self.main), product_ids.take(self.accessory),
                                     pa.array(self.strength, pa.float64())], schema=COMPLEMENTS_SCHEMA)


@dataclass
class EventRows:
    """A block's events in write order (session, then step), with their products resolved."""

    session: np.ndarray     # (E,) row in Sessions
    step: np.ndarray
    ts_us: np.ndarray
    event_type: np.ndarray  # index into EVENT_TYPES
    product: np.ndarray     # catalogue index


def build_complements(catalogue: Catalogue, config: ComplementConfig, rng: np.random.Generator) -> Complements:
    n_cat, n_products = catalogue.n_categories, catalogue.n_products
    width = min(config.accessory_categories, n_cat - 1)
    mains = np.flatnonzero(rng.random(n_products) < config.main_share) if width else np.zeros(0, dtype=np.int64)
    keys = rng.random((n_cat, n_cat))
    np.fill_diagonal(keys, -1.0)  # a category is never its own accessory category
    accessory_categories = np.argsort(-keys, axis=1, kind="stable")[:, :max(width, 1)]  # (n_cat, width)

    counts = rng.integers(config.accessories_min, config.accessories_max + 1, len(mains))
    main = np.repeat(mains, counts)  # (A',) with repeats where two draws hit one product
    category = accessory_categories[catalogue.product_category[main], rng.integers(0, max(width, 1), len(main))]
    # Popularity sums to 1 within each category and categories are contiguous, so the global running sum
    # reaches c + 1 at the end of category c: a product of c by popularity is at c + uniform.
    running = np.cumsum(catalogue.product_popularity)
    accessory = np.searchsorted(running, category + rng.random(len(main)), side="right")
    accessory = np.clip(accessory, catalogue.category_start[category], catalogue.category_start[category + 1] - 1)
    strength = rng.uniform(config.strength_min, 1.0, len(main))

    _, first = np.unique(main * n_products + accessory, return_index=True)  # sorted by (main, accessory)
    main, accessory, strength = main[first], accessory[first], strength[first]
    start = np.searchsorted(main, np.arange(n_products + 1))
    return Complements(main=main, accessory=accessory, strength=strength, start=start)


def add_accessory_events(rows: EventRows, sessions: Sessions, complements: Complements, config: SimulatorConfig,
                         rng: np.random.Generator) -> tuple[EventRows, np.ndarray]:
    """The block's events with the accessory events appended to their sessions -> the merged rows and (E,)
    the position of each original event in them."""
    n_products = len(complements.start) - 1
    session, accessory, strength = _accessories_of_purchases(rows, complements, n_products)
    viewed = rng.random(len(session)) < config.complements.view_rate * strength
    carted = viewed & (rng.random(len(session)) < config.complements.buy_rate)
    session, accessory, carted = session[viewed], accessory[viewed], carted[viewed]

    # Per viewed accessory a view (and a cart); then one checkout of the carted ones.
    per_row = 1 + carted.astype(np.int64)
    row = np.repeat(np.arange(len(session)), per_row)
    kind = np.where(np.arange(len(row)) - np.repeat(np.cumsum(per_row) - per_row, per_row) == 0, VIEW_EVENT, CART_EVENT)
    bought = np.flatnonzero(carted)
    row = np.concatenate([row, bought])
    kind = np.concatenate([kind, np.full(len(bought), PURCHASE_EVENT)])
    phase = (kind == PURCHASE_EVENT).astype(np.int64)
    order = np.lexsort((row, phase, session[row]))  # stable: a row's view before its cart
    row, kind, phase = row[order], kind[order], phase[order]
    new_session = session[row]

    vc = config.visits
    log_dwell = np.where(phase == 1, np.log(vc.checkout_dwell_seconds_median * US_PER_SECOND),
                         np.log(vc.dwell_seconds_median * US_PER_SECOND))
    spread = np.where(phase == 1, CHECKOUT_DWELL_LOG_SD, vc.dwell_log_sd)
    dwell = np.maximum(np.round(np.exp(log_dwell + spread * rng.standard_normal(len(row)))).astype(np.int64), 1)
    first = np.r_[True, new_session[1:] != new_session[:-1]] if len(row) else np.zeros(0, dtype=bool)
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(row)), 0))
    running = np.cumsum(dwell)
    within = running - (running - dwell)[group_start]                      # dwell summed within the session
    ts = sessions.end_us[new_session] + within
    last_step = np.bincount(rows.session, minlength=len(sessions.user)) - 1
    step = last_step[new_session] + 1 + np.arange(len(row)) - group_start
    keep = ts < _next_start(sessions)[new_session]   # a customer's sessions never overlap

    added = EventRows(session=new_session[keep], step=step[keep], ts_us=ts[keep], event_type=kind[keep].astype(np.int64),
                      product=accessory[row[keep]])
    return _merge(rows, added)


def _accessories_of_purchases(rows: EventRows, complements: Complements,
                              n_products: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(session, accessory, strength) of each main item bought in a session, in purchase order, once per session
    and accessory, leaving out accessories the session already bought."""
    bought = np.flatnonzero(rows.event_type == PURCHASE_EVENT)
    bought_keys = rows.session[bought] * n_products + rows.product[bought]
    main = bought[np.diff(complements.start)[rows.product[bought]] > 0]
    _, first = np.unique(rows.session[main] * n_products + rows.product[main], return_index=True)
    main = main[np.sort(first)]
    counts = np.diff(complements.start)[rows.product[main]]
    offsets = np.cumsum(counts) - counts
    pair = np.repeat(complements.start[rows.product[main]], counts) + np.arange(counts.sum()) - np.repeat(offsets, counts)
    session = np.repeat(rows.session[main], counts)
    accessory = complements.accessory[pair]
    key = session * n_products + accessory
    _, first = np.unique(key, return_index=True)
    first = np.sort(first)
    first = first[~np.isin(key[first], bought_keys)]
    return session[first], accessory[first], complements.strength[pair[first]]


def _next_start(sessions: Sessions) -> np.ndarray:
    """(S,) start of the same customer's next session; int64 max after their last one."""
    following = np.full(len(sessions.user), np.iinfo(np.int64).max, dtype=np.int64)
    same_user = sessions.user[1:] == sessions.user[:-1]
    following[:-1][same_user] = sessions.start_us[1:][same_user]
    return following


def _merge(rows: EventRows, added: EventRows) -> tuple[EventRows, np.ndarray]:
    session = np.concatenate([rows.session, added.session])
    step = np.concatenate([rows.step, added.step])
    order = np.lexsort((step, session))
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    merged = EventRows(session=session[order], step=step[order],
                       ts_us=np.concatenate([rows.ts_us, added.ts_us])[order],
                       event_type=np.concatenate([rows.event_type, added.event_type])[order],
                       product=np.concatenate([rows.product, added.product])[order])
    return merged, position[:len(rows.session)]
