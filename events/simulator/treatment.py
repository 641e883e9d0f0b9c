"""A randomised treatment (a message or discount sent to a shopper mid-session) with a heterogeneous
causal effect, and its oracle: the true uplift at every decision point.

Each session draws a decision step uniformly from 0 .. decision_steps - 1; a session still going on at that
step with no purchase yet is a decision point, and a random `share` of decision points is treated. A treated
shopper plays the rest of the session at a shifted purchase propensity: logit + effect. The effect depends
first on the shopper's state at the decision, which the shop can see in its own events (as a real message's
effect does), and only in part on latent traits. Each decision point is in one of four groups, first match:
  - do not disturb: the session started less than do_not_disturb_within_hours after the shopper's previous
    session ended (back that soon, they need no reminder and a message puts them off): -put_off_logit;
  - sure thing: at least sure_thing_purchases earlier purchases (they buy or not regardless): 0;
  - lost cause: an empty cart after at least lost_cause_sessions earlier sessions, none with a purchase: 0;
  - persuadable: everyone else: lift_logit_mean, plus cart_lift_logit with an item in the cart (hesitating
    over it), plus the latent part lift_per_sensitivity * (price sensitivity - mean) + N(0, lift_logit_sd)
    per customer; clipped at 0.
Through the funnel the same logit shift changes a middling purchase chance most, so within a group the
uplift also varies with the day's (latent) propensity.
The oracle is exact under the simulator's model: the chance of a later purchase in the session from the
decision state under each arm (funnel_model.purchase_chance with each propensity), so the best achievable
targeting is known. Everything is drawn from its own random stream, so the events of the untreated
simulation are not disturbed by drawing it (a treated session of course goes on differently).

Until 2026-11 the effect was a per-customer trait (lift by price sensitivity plus noise, do-not-disturb drawn
in proportion to the latent visit rate): almost invisible in the events, so even LightGBM fitted to the true
uplift reached only .18 of the oracle's Qini (benchmarks/README.md, "Uplift").
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from events.simulator.config import SimulatorConfig
from events.simulator.customers import Customers
from events.simulator.funnel_model import SessionValues, purchase_chance, solve_values

if TYPE_CHECKING:
    from events.simulator.funnel import OpenSessions

TREATMENT_STREAM = 2
"""Block b's treatment draws come from the random stream (seed, TREATMENT_STREAM, b)."""
TIMESTAMP = pa.timestamp("us", tz="UTC")
TREATMENTS_SCHEMA = pa.schema([
    pa.field("user_id", pa.string(), nullable=False),
    pa.field("session_id", pa.string(), nullable=False),
    pa.field("step", pa.int32(), nullable=False),
    pa.field("ts", TIMESTAMP, nullable=False),
    pa.field("treated", pa.bool_(), nullable=False),
])
UPLIFT_SCHEMA = pa.schema([
    pa.field("session_id", pa.string(), nullable=False),
    pa.field("step", pa.int32(), nullable=False),
    pa.field("p_control", pa.float64(), nullable=False),
    pa.field("p_treated", pa.float64(), nullable=False),
    pa.field("uplift", pa.float64(), nullable=False),
    pa.field("do_not_disturb", pa.bool_(), nullable=False),
    pa.field("group", pa.string(), nullable=False),
])
GROUPS = ("persuadable", "sure_thing", "lost_cause", "do_not_disturb")
PERSUADABLE, SURE_THING, LOST_CAUSE, DO_NOT_DISTURB = range(len(GROUPS))
US_PER_HOUR = 3_600 * 1_000_000


@dataclass
class Decisions:
    """Decision points, one row each (block-local customer and session number)."""

    user: np.ndarray
    number: np.ndarray
    step: np.ndarray
    ts_us: np.ndarray        # the decision event's time, microseconds since the simulation start
    treated: np.ndarray
    p_control: np.ndarray
    p_treated: np.ndarray
    group: np.ndarray        # index into GROUPS


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


class Treatments:
    """One block's treatment: each customer's latent lift and history, then the decisions of every round."""

    def __init__(self, customers: Customers, config: SimulatorConfig, rng: np.random.Generator) -> None:
        tc, cc = config.treatment, config.customers
        n = customers.n
        self.latent_lift = (tc.lift_per_sensitivity * (customers.price_sensitivity - cc.price_sensitivity_mean)
                            + tc.lift_logit_sd * rng.standard_normal(n))  # (n,) logit
        self.purchases = np.zeros(n, dtype=np.int64)   # earlier sessions with a purchase
        self.last_end_us = np.full(n, -1, dtype=np.int64)  # end of the previous session, -1 before the first
        self.customers, self.config, self.rng = customers, config, rng
        self.parts: list[Decisions] = []
        self._round: RoundTreatment | None = None

    def start_round(self, user: np.ndarray, number: np.ndarray) -> RoundTreatment:
        """The round's sessions (one per customer in `user`, their `number`-th) draw their decision steps."""
        if self._round is not None:
            self._round.close()
        steps = self.rng.integers(0, self.config.treatment.decision_steps, len(user))
        self._round = RoundTreatment(self, user, number, steps)
        return self._round

    def decisions(self) -> Decisions:
        """Every decision of the block, in write order (customer, then session number)."""
        names = [f.name for f in fields(Decisions)]
        if not self.parts:
            return Decisions(**{name: np.zeros(0, dtype=bool if name == "treated" else np.int64) for name in names})
        joined = Decisions(**{name: np.concatenate([getattr(p, name) for p in self.parts]) for name in names})
        order = np.lexsort((joined.number, joined.user))
        return Decisions(**{name: getattr(joined, name)[order] for name in names})


class RoundTreatment:
    """The decisions of one round of sessions; `decide` is called by funnel.run_sessions at every step, with
    every open session, so its calls also see each session's start, last event and purchase (the history that
    the next rounds' groups read)."""

    def __init__(self, block: Treatments, user: np.ndarray, number: np.ndarray, decision_step: np.ndarray) -> None:
        self.block, self.user, self.number, self.decision_step = block, user, number, decision_step
        self.start_us = np.zeros(len(user), dtype=np.int64)
        self.last_us = np.zeros(len(user), dtype=np.int64)
        self.bought = np.zeros(len(user), dtype=bool)

    def close(self) -> None:
        """Fold this round's sessions into the customers' history."""
        self.block.purchases[self.user] += self.bought
        self.block.last_end_us[self.user] = self.last_us

    def groups(self, open_: OpenSessions, at: np.ndarray) -> np.ndarray:
        """(len(at),) GROUPS index of the decision points `at` (indices into open_)."""
        tc, block = self.block.config.treatment, self.block
        row, user = open_.row[at], open_.user[at]
        previous_end = block.last_end_us[user]
        back_soon = (previous_end >= 0) & (self.start_us[row] - previous_end < tc.do_not_disturb_within_hours * US_PER_HOUR)
        purchases = block.purchases[user]
        given_up = (open_.cart_size[at] == 0) & (self.number[row] >= tc.lost_cause_sessions) & (purchases == 0)
        return np.select([back_soon, purchases >= tc.sure_thing_purchases, given_up],
                         [DO_NOT_DISTURB, SURE_THING, LOST_CAUSE], PERSUADABLE).astype(np.int8)

    def effect(self, open_: OpenSessions, at: np.ndarray, group: np.ndarray) -> np.ndarray:
        """(len(at),) logit shift of the decision points `at` if treated."""
        tc = self.block.config.treatment
        lift = tc.lift_logit_mean + tc.cart_lift_logit * (open_.cart_size[at] > 0) + self.block.latent_lift[open_.user[at]]
        return np.select([group == PERSUADABLE, group == DO_NOT_DISTURB], [np.maximum(lift, 0.0), -tc.put_off_logit], 0.0)

    def decide(self, open_: OpenSessions, acceptance: np.ndarray, values: SessionValues) -> None:
        """Treat a random share of the sessions at their decision step; treated ones go on at the new
        propensity (changed in open_ and, for the intent oracle, in `values`)."""
        block = self.block
        if not open_.step.any():  # the round's first call: every session is at its first event
            self.start_us[open_.row] = open_.ts
        self.last_us[open_.row] = open_.ts
        self.bought[open_.row] = open_.purchased
        at = np.flatnonzero((open_.step == self.decision_step[open_.row]) & ~open_.purchased)
        if not len(at):
            return
        customers, fc = block.customers, block.config.funnel
        row, user = open_.row[at], open_.user[at]
        group = self.groups(open_, at)
        control = open_.propensity[at]
        treated_propensity = 1.0 / (1.0 + np.exp(-(logit(control) + self.effect(open_, at, group))))
        treated_values = solve_values(customers.choices.acceptance_moments[user], customers.slot_weight[user],
                                      treated_propensity, customers.abandon[user], customers.compare_share[user], fc)
        state = (open_.stage[at], open_.cart_size[at], acceptance[at], open_.current_slot[at])
        go_on = (open_.abandon[at], open_.compare_share[at], fc)
        p_control = purchase_chance(values, row, *state, control, *go_on)
        p_treated = purchase_chance(treated_values, np.arange(len(at)), *state, treated_propensity, *go_on)
        treated = block.rng.random(len(at)) < block.config.treatment.share
        open_.propensity[at[treated]] = treated_propensity[treated]
        for name in ("after_cart_change", "browse", "slot"):
            getattr(values, name)[row[treated]] = getattr(treated_values, name)[treated]
        block.parts.append(Decisions(user=user.copy(), number=self.number[row], step=open_.step[at].copy(),
                                     ts_us=open_.ts[at].copy(), treated=treated, p_control=p_control,
                                     p_treated=p_treated, group=group))


def treatment_tables(d: Decisions, uids: pa.Array, sids: pa.Array, start_us: int) -> tuple[pa.Table, pa.Table]:
    """(treatments, oracle_uplift) tables of a block's decisions; `uids` are the block's user ids, `sids` the
    decisions' session ids (made by the caller, as for the events)."""
    step = pa.array(d.step, pa.int32())
    assignment = pa.Table.from_arrays([
        uids.take(d.user), sids, step,
        pa.array(start_us + d.ts_us, pa.int64()).cast(TIMESTAMP),
        pa.array(d.treated, pa.bool_()),
    ], schema=TREATMENTS_SCHEMA)
    oracle = pa.Table.from_arrays([
        sids, step, pa.array(d.p_control, pa.float64()), pa.array(d.p_treated, pa.float64()),
        pa.array(d.p_treated - d.p_control, pa.float64()), pa.array(d.group == DO_NOT_DISTURB, pa.bool_()),
        pa.array(np.asarray(GROUPS)[d.group.astype(np.int64)], pa.string()),
    ], schema=UPLIFT_SCHEMA)
    return assignment, oracle
