"""Repeat visits: each customer's sessions, one round (their j-th session) at a time.

After every session the customer churns (never returns), goes dormant or stays active, with chances
that depend on whether the session had a purchase. The next visit comes after an exponential gap on
the daily clock's warped time: at the customer's visit rate when active, at 1 / dormant_gap_days_mean
when dormant. The first visit is at the customer's join time; visits stop at the end of the simulated
days (a session that starts before the end is played to its last event).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from events.simulator.catalogue import Catalogue
from events.simulator.config import SimulatorConfig
from events.simulator.customers import Customers
from events.simulator.daily_clock import DailyClock
from events.simulator.funnel import NextMixture, SessionEvents, run_sessions
from events.simulator.funnel_model import solve_values
from events.simulator.treatment import Treatments

US_PER_DAY = 86_400 * 1_000_000
ACTIVE, DORMANT, CHURNED = range(3)


@dataclass
class Sessions:
    user: np.ndarray          # block-local customer index
    number: np.ndarray        # j: the customer's j-th session (0-based)
    start_us: np.ndarray
    end_us: np.ndarray
    purchased: np.ndarray
    regime_after: np.ndarray  # ACTIVE, DORMANT or CHURNED, drawn when the session ends


@dataclass
class BlockActivity:
    sessions: Sessions
    events: SessionEvents     # events[i].session indexes `sessions`


def regime_chances(purchased: np.ndarray, config: SimulatorConfig) -> tuple[np.ndarray, np.ndarray]:
    """(churn, dormancy) chances after a session, by whether it had a purchase."""
    vc = config.visits
    churn = np.where(purchased, vc.churn_hazard_after_purchase, vc.churn_hazard)
    dormancy = np.where(purchased, vc.dormancy_probability_after_purchase, vc.dormancy_probability)
    return churn, dormancy


def simulate_visits(customers: Customers, catalogue: Catalogue, clock: DailyClock, config: SimulatorConfig,
                    rng: np.random.Generator, treatments: Treatments | None = None) -> BlockActivity:
    n = customers.n
    next_start = customers.join_day.copy()
    previous_end_us = np.full(n, -1, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    number = np.zeros(n, dtype=np.int64)
    rounds: list[tuple[Sessions, SessionEvents]] = []

    while True:
        user = np.flatnonzero(alive & (next_start < config.days))
        if not len(user):
            break
        start_us = np.maximum(np.ceil(next_start[user] * US_PER_DAY).astype(np.int64), previous_end_us[user] + 1)
        day = start_us // US_PER_DAY
        propensity = customers.propensity(user, day)
        values = solve_values(customers.choices.acceptance_moments[user], customers.slot_weight[user], propensity,
                              customers.abandon[user], customers.compare_share[user], config.funnel)
        treatment = treatments.start_round(user, number[user]) if treatments is not None else None
        events = run_sessions(user, start_us, propensity, values, customers, catalogue, config, rng, treatment)

        churn, dormancy = regime_chances(events.session_purchased, config)
        r = rng.random(len(user))
        regime = np.where(r < churn, CHURNED, np.where(r < churn + dormancy, DORMANT, ACTIVE))
        rate = np.where(regime == DORMANT, 1.0 / config.visits.dormant_gap_days_mean, customers.visit_rate[user])
        gap = rng.exponential(1.0, len(user)) / rate
        end_day = events.session_end_us / US_PER_DAY
        next_start[user] = clock.to_real(clock.to_warped(end_day) + gap)
        previous_end_us[user] = events.session_end_us
        alive[user[regime == CHURNED]] = False

        rounds.append((Sessions(user=user, number=number[user].copy(), start_us=start_us,
                                end_us=events.session_end_us, purchased=events.session_purchased,
                                regime_after=regime), events))
        number[user] += 1
    return _concatenate(rounds, config)


def _concatenate(rounds: list[tuple[Sessions, SessionEvents]], config: SimulatorConfig) -> BlockActivity:
    """Join the rounds and put everything in write order: sessions by (customer, number), events by
    (session, step), which is (customer, ts) because a customer's sessions never overlap."""
    k_max = config.funnel.max_cart_items
    session_offset = np.cumsum([0] + [len(s.user) for s, _ in rounds])
    event_offset = np.cumsum([0] + [len(e.session) for _, e in rounds])

    def cat(parts: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
        return np.concatenate(parts) if parts else empty

    none_i, none_b = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    user = cat([s.user for s, _ in rounds], none_i)
    number = cat([s.number for s, _ in rounds], none_i)
    session_order = np.lexsort((number, user))
    session_rank = np.empty_like(session_order)
    session_rank[session_order] = np.arange(len(session_order))
    sessions = Sessions(
        user=user[session_order], number=number[session_order],
        start_us=cat([s.start_us for s, _ in rounds], none_i)[session_order],
        end_us=cat([s.end_us for s, _ in rounds], none_i)[session_order],
        purchased=cat([s.purchased for s, _ in rounds], none_b)[session_order],
        regime_after=cat([s.regime_after for s, _ in rounds], none_i)[session_order],
    )

    session = session_rank[cat([e.session + session_offset[i] for i, (_, e) in enumerate(rounds)], none_i)]
    step = cat([e.step for _, e in rounds], none_i)
    event_order = np.lexsort((step, session))
    event_rank = np.empty_like(event_order)
    event_rank[event_order] = np.arange(len(event_order))

    mixtures = [e.next_mixture for _, e in rounds]
    mixture_event = event_rank[cat([m.event + event_offset[i] for i, m in enumerate(mixtures)], none_i)]
    mixture_order = np.argsort(mixture_event, kind="stable")
    mixture = NextMixture(
        event=mixture_event[mixture_order],
        weights=cat([m.weights for m in mixtures], np.zeros((0, 6)))[mixture_order],
        current=cat([m.current for m in mixtures], none_i)[mixture_order],
        current_slot=cat([m.current_slot for m in mixtures], none_i)[mixture_order],
        cart=cat([m.cart for m in mixtures], np.zeros((0, k_max), dtype=np.int64))[mixture_order],
        cart_size=cat([m.cart_size for m in mixtures], none_i)[mixture_order],
        checkout_position=cat([m.checkout_position for m in mixtures], none_i)[mixture_order],
    )
    events = SessionEvents(
        session=session[event_order],
        step=step[event_order],
        ts_us=cat([e.ts_us for _, e in rounds], none_i)[event_order],
        event_type=cat([e.event_type for _, e in rounds], np.zeros(0, dtype=np.int8))[event_order],
        choice=cat([e.choice for _, e in rounds], none_i)[event_order],
        purchase_chance=cat([e.purchase_chance for _, e in rounds], np.zeros(0))[event_order],
        before_purchase=cat([e.before_purchase for _, e in rounds], none_b)[event_order],
        next_mixture=mixture,
        session_end_us=sessions.end_us,
        session_purchased=sessions.purchased,
    )
    return BlockActivity(sessions=sessions, events=events)
