"""Runs a batch of sessions through the funnel of funnel_model.py, one step for all open sessions at a
time, and records with every event what the oracles need: the exact chance of a later purchase in the
session, and the mixture that the next event's product is drawn from."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from events.simulator.catalogue import Catalogue
from events.simulator.config import SimulatorConfig
from events.simulator.customers import Customers
from events.simulator.funnel_model import (
    AFTER_PURCHASE, BROWSE, BUY_NOW, CART, CART_CHANGED, CHECKOUT, COMPARE, DETAIL, DETAIL_VIEW, LEAVE,
    NEXT_IN_CHECKOUT, REMOVE, START_CHECKOUT, VIEW, SessionValues, action_probabilities, purchase_chance,
)
from events.schema import EVENT_TYPES

if TYPE_CHECKING:
    from events.simulator.treatment import RoundTreatment

VIEW_EVENT, CART_EVENT, REMOVE_EVENT, PURCHASE_EVENT = (EVENT_TYPES.index(t) for t in
                                                         ("view", "cart", "remove_from_cart", "purchase"))
US_PER_SECOND = 1_000_000
CHECKOUT_DWELL_LOG_SD = 0.5

# Next-product mixture components, in the column order of NextMixture.weights.
ON_CURRENT, ON_FIRST_CART_ITEM, ON_CHECKOUT_ITEM, ON_REMOVED_ITEM, ON_COMPARE, ON_BROWSE = range(6)


@dataclass
class NextMixture:
    """For each event that has a next event: what the next product is drawn from."""

    event: np.ndarray         # index into SessionEvents
    weights: np.ndarray       # (n, 6) component weights given that the session goes on; rows sum to 1
    current: np.ndarray       # flat choice index of the product just viewed, -1 if none
    current_slot: np.ndarray  # its slot (compare draws from q(. | slot)), -1 if none
    cart: np.ndarray          # (n, K) flat indices of the cart items in order, -1 padded
    cart_size: np.ndarray
    checkout_position: np.ndarray  # cart position of the next purchase during a checkout


@dataclass
class SessionEvents:
    session: np.ndarray       # row of the session in the batch
    step: np.ndarray          # 0-based index within the session
    ts_us: np.ndarray         # microseconds since the simulation start
    event_type: np.ndarray    # index into EVENT_TYPES
    choice: np.ndarray        # flat choice index (customers.choices); gives the product
    purchase_chance: np.ndarray  # chance of a purchase event later in the session, after this event
    before_purchase: np.ndarray  # True up to (excluding) the session's first purchase
    next_mixture: NextMixture
    session_end_us: np.ndarray   # per session: time of its last event
    session_purchased: np.ndarray


@dataclass
class OpenSessions:
    """The sessions still running, as parallel arrays with one row per session."""

    row: np.ndarray            # the session's row in the batch
    user: np.ndarray
    propensity: np.ndarray
    abandon: np.ndarray
    compare_share: np.ndarray
    stage: np.ndarray          # funnel_model stage after the last event
    cart_size: np.ndarray
    cart: np.ndarray           # (n, K) flat choice indices in the order added, -1 padded
    checkout_position: np.ndarray
    current: np.ndarray        # flat choice index of the product on screen (VIEW, DETAIL), else -1
    current_slot: np.ndarray
    purchased: np.ndarray
    step: np.ndarray
    ts: np.ndarray
    last_event: np.ndarray     # index of the last event in the Recorder

    def select(self, mask: np.ndarray) -> OpenSessions:
        return OpenSessions(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})


class ProductDraws:
    """Draws products from customers' choice tables."""

    def __init__(self, customers: Customers, rng: np.random.Generator) -> None:
        self._cumulative = customers.choices.cumulative
        self._slot_cumulative = np.cumsum(customers.slot_weight, axis=1)
        self._slots = customers.slot_weight.shape[1]
        self._rng = rng

    def from_slot(self, user: np.ndarray, slot: np.ndarray) -> np.ndarray:
        key = (user * self._slots + slot) + self._rng.random(len(user))
        return np.searchsorted(self._cumulative, key, side="right")

    def browse(self, user: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A product by the customer's slot weights, then q(. | slot); returns (flat index, slot)."""
        slot = sample_rows(self._slot_cumulative[user], self._rng)
        return self.from_slot(user, slot), slot


def sample_rows(cumulative: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One column index per row, by the row's cumulative weights. Scaling by the row total keeps the
    draw off trailing zero-weight columns even when rounding leaves the total a hair below 1."""
    u = rng.random(len(cumulative)) * cumulative[:, -1]
    return (u[:, None] >= cumulative).sum(axis=1)


class Recorder:
    """Collects the events of a batch with the oracle inputs that come with them."""

    def __init__(self, n_sessions: int, k_max: int) -> None:
        self._k_max = k_max
        self._events: dict[str, list[np.ndarray]] = {k: [] for k in ("session", "step", "ts", "type", "choice",
                                                                     "before")}
        self._chance_at: list[np.ndarray] = []
        self._chance: list[np.ndarray] = []
        self._mixture: dict[str, list[np.ndarray]] = {k: [] for k in ("event", "weights", "current", "slot", "cart",
                                                                      "size", "pos")}
        self._n_events = 0
        self.session_end_us = np.zeros(n_sessions, dtype=np.int64)
        self.session_purchased = np.zeros(n_sessions, dtype=bool)

    def event(self, open_: OpenSessions, kind: np.ndarray, choice: np.ndarray) -> np.ndarray:
        """Record each open session's newest event; returns the events' indices."""
        m = len(open_.row)
        self._events["session"].append(open_.row.copy())
        self._events["step"].append(open_.step.copy())
        self._events["ts"].append(open_.ts.copy())
        self._events["type"].append(kind)
        self._events["choice"].append(choice)
        self._events["before"].append(~open_.purchased)
        index = np.arange(self._n_events, self._n_events + m)
        self._n_events += m
        return index

    def purchase_chance(self, event: np.ndarray, chance: np.ndarray) -> None:
        self._chance_at.append(event)
        self._chance.append(chance)

    def next_mixture(self, open_: OpenSessions, probs: np.ndarray) -> None:
        """The next event's product distribution from each state (all going on), as component weights."""
        weights = np.stack([
            probs[:, CART] + probs[:, BUY_NOW] + probs[:, DETAIL_VIEW],
            probs[:, START_CHECKOUT],
            probs[:, NEXT_IN_CHECKOUT],
            probs[:, REMOVE],
            probs[:, COMPARE],
            probs[:, BROWSE],
        ], axis=1)
        self._mixture["weights"].append((weights / (1.0 - probs[:, LEAVE])[:, None]).ravel())
        # Copies: _advance updates the open sessions' arrays in place.
        self._mixture["event"].append(open_.last_event.copy())
        self._mixture["current"].append(open_.current.copy())
        self._mixture["slot"].append(open_.current_slot.copy())
        self._mixture["cart"].append(open_.cart.ravel().copy())
        self._mixture["size"].append(open_.cart_size.copy())
        self._mixture["pos"].append(np.where(open_.stage == CHECKOUT, open_.checkout_position, 0))

    def session_end(self, closing: OpenSessions) -> None:
        self.session_end_us[closing.row] = closing.ts
        self.session_purchased[closing.row] = closing.purchased

    def finish(self) -> SessionEvents:
        chance = np.empty(self._n_events)
        chance[np.concatenate(self._chance_at)] = np.concatenate(self._chance)
        e = {k: np.concatenate(v) for k, v in self._events.items()}
        m = {k: np.concatenate(v) if v else np.zeros(0, dtype=np.int64) for k, v in self._mixture.items()}
        return SessionEvents(
            session=e["session"], step=e["step"], ts_us=e["ts"], event_type=e["type"], choice=e["choice"],
            purchase_chance=chance, before_purchase=e["before"],
            next_mixture=NextMixture(event=m["event"], weights=m["weights"].reshape(-1, 6).astype(np.float64),
                                     current=m["current"], current_slot=m["slot"],
                                     cart=m["cart"].reshape(-1, self._k_max), cart_size=m["size"],
                                     checkout_position=m["pos"]),
            session_end_us=self.session_end_us, session_purchased=self.session_purchased,
        )


def run_sessions(user: np.ndarray, start_us: np.ndarray, propensity: np.ndarray, values: SessionValues,
                 customers: Customers, catalogue: Catalogue, config: SimulatorConfig,
                 rng: np.random.Generator, treatment: RoundTreatment | None = None) -> SessionEvents:
    """Play one session per (user, start) from its first event (a browse view) to its end; `treatment`
    (events/simulator/treatment.py) may treat sessions at their decision step."""
    n = len(user)
    k_max = config.funnel.max_cart_items
    draws = ProductDraws(customers, rng)
    record = Recorder(n, k_max)
    current, current_slot = draws.browse(user)
    open_ = OpenSessions(
        row=np.arange(n), user=user, propensity=propensity, abandon=customers.abandon[user],
        compare_share=customers.compare_share[user], stage=np.full(n, VIEW, dtype=np.int8),
        cart_size=np.zeros(n, dtype=np.int64), cart=np.full((n, k_max), -1, dtype=np.int64),
        checkout_position=np.zeros(n, dtype=np.int64), current=current, current_slot=current_slot,
        purchased=np.zeros(n, dtype=bool), step=np.zeros(n, dtype=np.int64), ts=start_us.copy(),
        last_event=np.zeros(0, dtype=np.int64),
    )
    open_.last_event = record.event(open_, np.full(n, VIEW_EVENT, dtype=np.int8), current.copy())

    while len(open_.row):
        acceptance = customers.acceptance(open_.user, customers.choices.product[np.maximum(open_.current, 0)],
                                          catalogue, config)
        if treatment is not None:
            treatment.decide(open_, acceptance, values)
        probs = action_probabilities(open_.stage, open_.cart_size, acceptance, open_.propensity, open_.abandon,
                                     open_.compare_share, config.funnel)
        record.purchase_chance(open_.last_event, purchase_chance(
            values, open_.row, open_.stage, open_.cart_size, acceptance, open_.current_slot, open_.propensity,
            open_.abandon, open_.compare_share, config.funnel))
        action = sample_rows(np.cumsum(probs, axis=1), rng)
        goes_on = action != LEAVE
        record.session_end(open_.select(~goes_on))
        open_, action = open_.select(goes_on), action[goes_on]
        record.next_mixture(open_, probs[goes_on])
        if not len(open_.row):
            break
        kind, product = _advance(open_, action, draws, config, rng)
        open_.last_event = record.event(open_, kind, product)
    return record.finish()


def _advance(open_: OpenSessions, action: np.ndarray, draws: ProductDraws, config: SimulatorConfig,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Apply each session's action in place: time, stage, cart, product on screen. Returns the new
    events' types and flat choice indices."""
    vc = config.visits
    n = len(action)
    in_checkout = action == NEXT_IN_CHECKOUT
    log_dwell = np.where(in_checkout, np.log(vc.checkout_dwell_seconds_median * US_PER_SECOND),
                         np.log(vc.dwell_seconds_median * US_PER_SECOND))
    spread = np.where(in_checkout, CHECKOUT_DWELL_LOG_SD, vc.dwell_log_sd)
    dwell = np.exp(log_dwell + spread * rng.standard_normal(n))
    open_.ts += np.maximum(np.round(dwell).astype(np.int64), 1)
    open_.step += 1

    kind = np.full(n, VIEW_EVENT, dtype=np.int8)
    product = open_.current.copy()
    stage = open_.stage.copy()
    current, current_slot, cart, cart_size = open_.current, open_.current_slot, open_.cart, open_.cart_size

    is_browse = action == BROWSE
    current[is_browse], current_slot[is_browse] = draws.browse(open_.user[is_browse])
    is_compare = action == COMPARE
    current[is_compare] = draws.from_slot(open_.user[is_compare], current_slot[is_compare])
    viewed = is_browse | is_compare
    product[viewed] = current[viewed]
    stage[viewed] = VIEW
    stage[action == DETAIL_VIEW] = DETAIL

    is_cart = action == CART
    kind[is_cart] = CART_EVENT
    cart[is_cart, cart_size[is_cart]] = current[is_cart]
    cart_size[is_cart] += 1
    stage[is_cart] = CART_CHANGED

    is_remove = action == REMOVE
    kind[is_remove] = REMOVE_EVENT
    removed_at = (rng.random(n) * cart_size).astype(np.int64)
    product[is_remove] = cart[is_remove, removed_at[is_remove]]
    cart[is_remove] = _drop_column(cart[is_remove], removed_at[is_remove])
    cart_size[is_remove] -= 1
    stage[is_remove] = CART_CHANGED

    is_buy = action == BUY_NOW
    kind[is_buy] = PURCHASE_EVENT
    stage[is_buy] = AFTER_PURCHASE

    checkout = open_.checkout_position
    checkout[action == START_CHECKOUT] = 0
    buys_from_cart = (action == START_CHECKOUT) | in_checkout
    kind[buys_from_cart] = PURCHASE_EVENT
    product[buys_from_cart] = cart[buys_from_cart, checkout[buys_from_cart]]
    checkout[buys_from_cart] += 1
    done = buys_from_cart & (checkout >= cart_size)
    stage[buys_from_cart] = CHECKOUT
    stage[done] = AFTER_PURCHASE
    cart[done] = -1
    cart_size[done] = 0

    not_viewing = (stage != VIEW) & (stage != DETAIL)
    current[not_viewing] = -1
    current_slot[not_viewing] = -1
    open_.stage = stage
    open_.purchased |= kind == PURCHASE_EVENT
    return kind, product


def _drop_column(matrix: np.ndarray, column: np.ndarray) -> np.ndarray:
    """Remove matrix[i, column[i]] from each row, shifting the rest left and padding with -1."""
    width = matrix.shape[1]
    source = np.arange(width)[None, :] + (np.arange(width)[None, :] >= column[:, None])
    padded = np.concatenate([matrix, np.full((len(matrix), 1), -1, dtype=matrix.dtype)], axis=1)
    return np.take_along_axis(padded, source, axis=1)
