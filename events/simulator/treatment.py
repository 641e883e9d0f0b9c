"""A randomised treatment (a message or discount sent to a shopper mid-session) with a heterogeneous
causal effect, and its oracle: the true uplift at every decision point.

Each session draws a decision step uniformly from 0 .. decision_steps - 1; a session still going on at that
step with no purchase yet is a decision point, and a random `share` of decision points is treated. A treated
shopper plays the rest of the session at a shifted purchase propensity: logit + effect, where the customer's
effect is
  - responsive customers: lift_logit_mean + lift_per_sensitivity * (price sensitivity - mean) + noise, >= 0.
    Through the funnel this makes the classic four kinds: persuadables (a middling propensity and a large
    lift: a large change), sure things (a propensity near 1 leaves little to gain), lost causes (near 0, a
    logit shift barely moves them), and in between every shade;
  - do-not-disturb customers: -put_off_logit. The chance of being one is proportional to the visit rate.
The oracle is exact under the simulator's model: the chance of a later purchase in the session from the
decision state under each arm (funnel_model.purchase_chance with each propensity), so the best achievable
targeting is known. Everything is drawn from its own random stream, so the events of the untreated
simulation are not disturbed by drawing it (a treated session of course goes on differently).
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
])


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


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


class Treatments:
    """One block's treatment: each customer's effect, then the decisions of every round of sessions."""

    def __init__(self, customers: Customers, config: SimulatorConfig, rng: np.random.Generator) -> None:
        tc, cc = config.treatment, config.customers
        n = customers.n
        lift = (tc.lift_logit_mean + tc.lift_per_sensitivity * (customers.price_sensitivity - cc.price_sensitivity_mean)
                + tc.lift_logit_sd * rng.standard_normal(n))
        chance = np.minimum(1.0, tc.do_not_disturb_share * customers.visit_rate / cc.visits_per_day_mean)
        self.do_not_disturb = rng.random(n) < chance
        self.effect = np.where(self.do_not_disturb, -tc.put_off_logit, np.maximum(lift, 0.0))  # (n,) logit shift
        self.customers, self.config, self.rng = customers, config, rng
        self.parts: list[Decisions] = []

    def start_round(self, user: np.ndarray, number: np.ndarray) -> RoundTreatment:
        """The round's sessions (one per customer in `user`, their `number`-th) draw their decision steps."""
        steps = self.rng.integers(0, self.config.treatment.decision_steps, len(user))
        return RoundTreatment(self, number, steps)

    def decisions(self) -> Decisions:
        """Every decision of the block, in write order (customer, then session number)."""
        parts = self.parts or [Decisions(*(np.zeros(0, dtype=np.int64),) * 4, np.zeros(0, dtype=bool),
                                         np.zeros(0), np.zeros(0))]
        joined = Decisions(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Decisions)})
        order = np.lexsort((joined.number, joined.user))
        return Decisions(**{f.name: getattr(joined, f.name)[order] for f in fields(Decisions)})


class RoundTreatment:
    """The decisions of one round of sessions; `decide` is called by funnel.run_sessions at every step."""

    def __init__(self, block: Treatments, number: np.ndarray, decision_step: np.ndarray) -> None:
        self.block, self.number, self.decision_step = block, number, decision_step

    def decide(self, open_: OpenSessions, acceptance: np.ndarray, values: SessionValues) -> None:
        """Treat a random share of the sessions at their decision step; treated ones go on at the new
        propensity (changed in open_ and, for the intent oracle, in `values`)."""
        block = self.block
        at = np.flatnonzero((open_.step == self.decision_step[open_.row]) & ~open_.purchased)
        if not len(at):
            return
        customers, fc = block.customers, block.config.funnel
        row, user = open_.row[at], open_.user[at]
        control = open_.propensity[at]
        treated_propensity = 1.0 / (1.0 + np.exp(-(logit(control) + block.effect[user])))
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
                                     p_treated=p_treated))


def treatment_tables(d: Decisions, do_not_disturb: np.ndarray, uids: pa.Array, sids: pa.Array,
                     start_us: int) -> tuple[pa.Table, pa.Table]:
    """(treatments, oracle_uplift) tables of a block's decisions; `uids` are the block's user ids, `sids` the
    decisions' session ids (made by the caller, as for the events), `do_not_disturb` per customer."""
    step = pa.array(d.step, pa.int32())
    assignment = pa.Table.from_arrays([
        uids.take(d.user), sids, step,
        pa.array(start_us + d.ts_us, pa.int64()).cast(TIMESTAMP),
        pa.array(d.treated, pa.bool_()),
    ], schema=TREATMENTS_SCHEMA)
    oracle = pa.Table.from_arrays([
        sids, step, pa.array(d.p_control, pa.float64()), pa.array(d.p_treated, pa.float64()),
        pa.array(d.p_treated - d.p_control, pa.float64()), pa.array(do_not_disturb[d.user], pa.bool_()),
    ], schema=UPLIFT_SCHEMA)
    return assignment, oracle
