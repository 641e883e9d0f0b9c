"""Churn oracle: at each midnight T, the chance that a customer makes no purchase in (T, T + horizon].

Between sessions a customer is ACTIVE, DORMANT or CHURNED. On the daily clock's warped time, sessions
come at the customer's visit rate (ACTIVE) or 1 / dormant_gap_days_mean (DORMANT); a session on day d
has a purchase with chance c(d) = the funnel's exact conversion chance of a session started that day
(propensity is constant within a day); a session without purchase is followed by CHURNED, DORMANT or
ACTIVE with the no-purchase hazards. Restricted to paths without purchase this is a continuous-time
Markov chain whose rates are constant within a day, and a warped day is exactly one real day, so the
seasonality drops out: a day multiplies the state by exp(Q_d) (2x2, in closed form), plus the mass that
churns. Multiplying the horizon's days gives the answer for each state.

The state at T is what the simulator knows then: the regime drawn after the last session, or, for a
session still running at T, the chance of no further purchase in it (the funnel's exact value) times
the regime that follows it. The one approximation: the gap after such a running session is taken to
start at T rather than at its end, minutes later.
"""
from __future__ import annotations

import numpy as np

from events.simulator.config import SimulatorConfig
from events.simulator.customers import Customers
from events.simulator.funnel_model import solve_values
from events.simulator.visits import ACTIVE, CHURNED, DORMANT, US_PER_DAY, BlockActivity, regime_chances

PAIRS_PER_CHUNK = 10_000


def churn_oracle(activity: BlockActivity, customers: Customers,
                 config: SimulatorConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, cutoff_day, p_churn) for every customer and midnight 1..days with an event before it."""
    horizon = config.oracle.churn_horizon_days
    sessions, events = activity.sessions, activity.events
    n = customers.n
    first_start = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_start, sessions.user, sessions.start_us)

    cutoff = np.arange(1, config.days + 1)
    user, cut = np.nonzero(first_start[:, None] < cutoff[None, :] * US_PER_DAY)
    cut_day = cutoff[cut]
    if not len(user):
        return user, cut_day, np.zeros(0)

    no_purchase = _no_purchase_by_regime(customers, first_start // US_PER_DAY, config.days + horizon, horizon,
                                         config)  # (n, days + 1, 2)
    v_active = no_purchase[user, cut_day, 0]
    v_dormant = no_purchase[user, cut_day, 1]

    # The last session started before each cutoff (sessions come sorted by customer and start).
    span = (config.days + 2) * US_PER_DAY
    keys = sessions.user * span + sessions.start_us
    last = np.searchsorted(keys, user * span + cut_day * US_PER_DAY, side="left") - 1
    cut_us = cut_day * US_PER_DAY
    running = sessions.end_us[last] >= cut_us

    regime = sessions.regime_after[last]
    p_gap = np.where(regime == CHURNED, 1.0, np.where(regime == DORMANT, v_dormant, v_active))

    # For sessions running at the cutoff: their last event before it.
    event_keys = events.session * span + events.ts_us        # events come sorted by (session, step)
    last_event = np.searchsorted(event_keys, last * span + cut_us, side="left") - 1
    purchased_before = ~events.before_purchase[last_event]
    churn, dormancy = regime_chances(purchased_before, config)
    after = (1.0 - churn - dormancy) * v_active + dormancy * v_dormant + churn
    p_running = (1.0 - events.purchase_chance[last_event]) * after

    p_churn = np.where(running, p_running, p_gap)
    return user, cut_day, np.clip(p_churn, 0.0, 1.0)


def _no_purchase_by_regime(customers: Customers, first_day: np.ndarray, n_days: int, horizon: int,
                           config: SimulatorConfig) -> np.ndarray:
    """(n, days + 1, 2): chance of no purchase in days [t, t + horizon) from ACTIVE / DORMANT at midnight t."""
    n = customers.n
    conversion = _daily_conversion(customers, first_day, n_days, config)        # (n, n_days)
    stay, to_churn = _day_transitions(customers, conversion, config)            # (n, n_days, 2, 2), (n, n_days, 2)
    n_cutoffs = config.days + 1
    value = np.ones((n, n_cutoffs, 2))
    for h in reversed(range(horizon)):
        day = np.arange(n_cutoffs) + h
        m, r = stay[:, day], to_churn[:, day]
        value = np.stack([m[..., 0, 0] * value[..., 0] + m[..., 0, 1] * value[..., 1] + r[..., 0],
                          m[..., 1, 0] * value[..., 0] + m[..., 1, 1] * value[..., 1] + r[..., 1]], axis=-1)
    return value


def _daily_conversion(customers: Customers, first_day: np.ndarray, n_days: int,
                      config: SimulatorConfig) -> np.ndarray:
    """c[u, d]: chance that a session customer u starts on day d has a purchase."""
    n = customers.n
    # Days before the first session are never read; 0.5 there just keeps Q invertible.
    conversion = np.full((n, n_days), 0.5)
    user, day = np.nonzero(np.arange(n_days)[None, :] >= first_day[:, None])
    for lo in range(0, len(user), PAIRS_PER_CHUNK):
        u, d = user[lo:lo + PAIRS_PER_CHUNK], day[lo:lo + PAIRS_PER_CHUNK]
        values = solve_values(customers.choices.acceptance_moments[u], customers.slot_weight[u],
                              customers.propensity(u, d), customers.abandon[u], customers.compare_share[u],
                              config.funnel)
        conversion[u, d] = values.browse[:, 0]
    return conversion


def _day_transitions(customers: Customers, conversion: np.ndarray,
                     config: SimulatorConfig) -> tuple[np.ndarray, np.ndarray]:
    """One day of the no-purchase chain: exp(Q) over (ACTIVE, DORMANT), and the chance of having churned."""
    vc = config.visits
    churn, dormancy = vc.churn_hazard, vc.dormancy_probability
    rate = np.stack(np.broadcast_arrays(customers.visit_rate[:, None], 1.0 / vc.dormant_gap_days_mean), axis=-1)
    rate = np.broadcast_to(rate, conversion.shape + (2,))                      # (n, days, 2)
    survive = 1.0 - conversion[..., None]                                      # no purchase in the session
    q = np.empty(conversion.shape + (2, 2))
    # After a session without purchase the next regime does not depend on the previous one.
    q[..., :, ACTIVE] = rate * survive * (1.0 - churn - dormancy)
    q[..., :, DORMANT] = rate * survive * dormancy
    q[..., 0, 0] -= rate[..., 0]
    q[..., 1, 1] -= rate[..., 1]
    to_churn_rate = rate * survive * churn

    half_trace = (q[..., 0, 0] + q[..., 1, 1]) / 2
    spread = np.sqrt(((q[..., 0, 0] - q[..., 1, 1]) / 2) ** 2 + q[..., 0, 1] * q[..., 1, 0])
    sinh_ratio = np.where(spread > 1e-12, np.sinh(spread) / np.maximum(spread, 1e-12), 1.0)
    centred = q - half_trace[..., None, None] * np.eye(2)
    stay = np.exp(half_trace)[..., None, None] * (np.cosh(spread)[..., None, None] * np.eye(2)
                                                  + sinh_ratio[..., None, None] * centred)
    # Churned mass after a day: Q^-1 (exp(Q) - I) r.
    to_churn = np.linalg.solve(q, ((stay - np.eye(2)) @ to_churn_rate[..., None]))[..., 0]
    return stay, to_churn
