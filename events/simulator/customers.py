"""Customers: latent tastes and habits, and each customer's table of product choice probabilities.

A customer is interested in a few categories ("slots", drawn by category popularity) with Dirichlet
weights, likes a few brands, has a price sensitivity, a purchase propensity that drifts linearly in
time, a per-event chance to leave, and a visit rate. From these, every customer gets a choice
distribution over the products of each interest category:

    q(p | slot) proportional to popularity(p) * exp(-price_choice_weight * sensitivity * price_z(p))
                                              * brand_view_boost ** [brand(p) is a favourite]

and a price acceptance g(p) = sigmoid(acceptance_logit - sensitivity * price_z(p) + bonus * favourite)
that scales cart and buy-now chances. Both are fixed per customer, so they are tabulated once, in flat
arrays with one segment per (customer, slot): a segment lists its category's products in catalogue order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from events.simulator.catalogue import Catalogue
from events.simulator.config import SimulatorConfig
from events.simulator.daily_clock import DailyClock

USERS_PER_CHUNK = 1_000


@dataclass
class ChoiceTable:
    segment_start: np.ndarray     # (n * S + 1,) flat range of segment u * S + s; empty for unused slots
    cumulative: np.ndarray        # (M,) segment index + cumulative q within the segment (for sampling)
    probability: np.ndarray       # (M,) q(p | slot)
    product: np.ndarray           # (M,) catalogue index
    slot: np.ndarray              # (M,) slot index s of the element's segment
    acceptance_moments: np.ndarray  # (n, S, 2): E[g] and E[g^2] under q(. | slot)
    slot_top: np.ndarray          # (n, S, k) flat indices of the k most likely products per slot, -1 padded
    browse_top: np.ndarray        # (n, k) flat indices of the k most likely browse products, -1 padded


@dataclass
class Customers:
    slot_category: np.ndarray     # (n, S) category per interest slot, -1 where unused
    slot_weight: np.ndarray       # (n, S) browse weight per slot, 0 where unused
    favourite_brands: np.ndarray  # (n, F)
    price_sensitivity: np.ndarray
    propensity_logit: np.ndarray  # at day 0
    propensity_drift: np.ndarray  # logit per day
    abandon: np.ndarray           # chance of leaving after each event
    compare_share: np.ndarray     # share of exploring views that compare within the category
    visit_rate: np.ndarray        # visits per day while active
    join_day: np.ndarray          # first visit, float days since the start
    choices: ChoiceTable

    @property
    def n(self) -> int:
        return len(self.abandon)

    def acceptance(self, user: np.ndarray, product: np.ndarray, catalogue: Catalogue,
                   config: SimulatorConfig) -> np.ndarray:
        """Price acceptance g of each (user, product) pair."""
        favourite = (catalogue.product_brand[product][:, None] == self.favourite_brands[user]).any(axis=1)
        return _acceptance(self.price_sensitivity[user], catalogue.product_price_z[product], favourite, config)

    def propensity(self, user: np.ndarray, day: np.ndarray) -> np.ndarray:
        """sigmoid(propensity logit) on a whole day (it is constant within a day)."""
        logit = self.propensity_logit[user] + self.propensity_drift[user] * day
        return 1.0 / (1.0 + np.exp(-logit))


def _acceptance(sensitivity: np.ndarray, price_z: np.ndarray, favourite: np.ndarray,
                config: SimulatorConfig) -> np.ndarray:
    logit = (config.funnel.acceptance_logit - sensitivity * price_z
             + config.customers.brand_acceptance_bonus * favourite)
    return 1.0 / (1.0 + np.exp(-logit))


def draw_customers(n: int, catalogue: Catalogue, clock: DailyClock, config: SimulatorConfig,
                   rng: np.random.Generator) -> Customers:
    cc = config.customers
    slots = min(cc.max_interest_categories, catalogue.n_categories)
    n_interests = np.minimum(1 + rng.poisson(max(cc.interest_categories_mean - 1, 0), n), slots)
    used = np.arange(slots) < n_interests[:, None]

    # Gumbel top-k: categories drawn without replacement in proportion to popularity.
    keys = np.log(catalogue.category_popularity) + rng.gumbel(size=(n, catalogue.n_categories))
    top = np.argpartition(-keys, slots - 1, axis=1)[:, :slots]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1), axis=1)
    slot_category = np.where(used, top, -1)
    raw_weight = np.where(used, rng.gamma(cc.interest_concentration, size=(n, slots)), 0.0)
    slot_weight = raw_weight / raw_weight.sum(axis=1, keepdims=True)

    favourite_brands = rng.choice(len(catalogue.brand_popularity), size=(n, cc.favourite_brands),
                                  p=catalogue.brand_popularity)
    sensitivity = rng.normal(cc.price_sensitivity_mean, cc.price_sensitivity_sd, n)
    mean_abandon = cc.abandon_per_step_mean
    abandon = np.maximum(rng.beta(mean_abandon * cc.abandon_per_step_concentration,
                                  (1 - mean_abandon) * cc.abandon_per_step_concentration, n),
                         cc.abandon_per_step_min)
    fc = config.funnel
    compare_share = np.clip(fc.compare_share + fc.compare_share_per_sensitivity * (sensitivity - cc.price_sensitivity_mean),
                            0.05, 0.95 - fc.detail_share)
    return Customers(
        slot_category=slot_category,
        slot_weight=slot_weight,
        favourite_brands=favourite_brands,
        price_sensitivity=sensitivity,
        propensity_logit=rng.normal(cc.propensity_logit_mean, cc.propensity_logit_sd, n),
        propensity_drift=rng.normal(0.0, cc.propensity_drift_sd_per_day, n),
        abandon=abandon,
        compare_share=compare_share,
        visit_rate=rng.gamma(cc.visits_per_day_shape, cc.visits_per_day_mean / cc.visits_per_day_shape, n),
        join_day=clock.to_real(rng.uniform(0.0, config.days, n)),
        choices=_choice_table(slot_category, slot_weight, favourite_brands, sensitivity, catalogue, config),
    )


def _choice_table(slot_category: np.ndarray, slot_weight: np.ndarray, favourite_brands: np.ndarray,
                  price_sensitivity: np.ndarray, catalogue: Catalogue, config: SimulatorConfig) -> ChoiceTable:
    n, slots = slot_category.shape
    top_k = config.oracle.next_top_k
    category = slot_category.ravel()
    size = np.where(category >= 0, np.diff(catalogue.category_start)[np.maximum(category, 0)], 0)
    segment_start = np.concatenate([[0], np.cumsum(size)])
    total = int(segment_start[-1])
    cumulative, probability = np.empty(total), np.empty(total)
    product, slot = np.empty(total, dtype=np.int64), np.empty(total, dtype=np.int32)
    moments = np.empty((n * slots, 2))
    # A few customers at a time: the temporaries are many arrays as long as the table.
    for first in range(0, n, USERS_PER_CHUNK):
        segments = np.arange(first * slots, min(first + USERS_PER_CHUNK, n) * slots)
        lo, hi = segment_start[segments[0]], segment_start[segments[-1] + 1]
        segment = np.repeat(segments, size[segments])
        local = segment - segments[0]
        flat_product = catalogue.category_start[category[segment]] + np.arange(lo, hi) - segment_start[segment]
        user = segment // slots
        favourite = (catalogue.product_brand[flat_product][:, None] == favourite_brands[user]).any(axis=1)
        price_z = catalogue.product_price_z[flat_product]
        sensitivity = price_sensitivity[user]
        weight = (catalogue.product_popularity[flat_product]
                  * np.exp(-config.customers.price_choice_weight * sensitivity * price_z)
                  * np.where(favourite, config.customers.brand_view_boost, 1.0))
        p = weight / np.bincount(local, weights=weight, minlength=len(segments))[local]
        running = np.cumsum(p)
        within = running - np.concatenate([[0.0], running])[segment_start[segments] - lo][local]
        ends = segment_start[segments + 1][size[segments] > 0] - 1 - lo
        within[ends] = 1.0                                   # close each segment exactly at 1
        acceptance = _acceptance(sensitivity, price_z, favourite, config)
        moments[segments, 0] = np.bincount(local, weights=p * acceptance, minlength=len(segments))
        moments[segments, 1] = np.bincount(local, weights=p * acceptance ** 2, minlength=len(segments))
        cumulative[lo:hi] = segment + within
        probability[lo:hi] = p
        product[lo:hi] = flat_product
        slot[lo:hi] = segment % slots

    slot_top = _top_per_segment(probability, category, segment_start, top_k).reshape(n, slots, top_k)
    return ChoiceTable(
        segment_start=segment_start,
        cumulative=cumulative,
        probability=probability,
        product=product,
        slot=slot,
        acceptance_moments=moments.reshape(n, slots, 2),
        slot_top=slot_top,
        browse_top=_browse_top(slot_top, probability, slot_weight, top_k),
    )


def _top_per_segment(probability: np.ndarray, category: np.ndarray, segment_start: np.ndarray,
                     k: int) -> np.ndarray:
    """(n_segments, k) flat indices of each segment's k largest probabilities, largest first, -1 padded.
    Segments of one category have one length, so each category is one dense argpartition."""
    top = np.full((len(category), k), -1, dtype=np.int64)
    for c in np.unique(category[category >= 0]):
        segments = np.flatnonzero(category == c)
        length = segment_start[segments[0] + 1] - segment_start[segments[0]]
        flat = segment_start[segments][:, None] + np.arange(length)
        width = min(k, length)
        values = probability[flat]
        best = np.argpartition(-values, width - 1, axis=1)[:, :width] if width < length else \
            np.broadcast_to(np.arange(length), (len(segments), length))
        best = np.take_along_axis(best, np.argsort(-np.take_along_axis(values, best, axis=1), axis=1), axis=1)
        top[segments, :width] = np.take_along_axis(flat, best, axis=1)
    return top


def _browse_top(slot_top: np.ndarray, probability: np.ndarray, slot_weight: np.ndarray, k: int) -> np.ndarray:
    """Top k of the browse distribution sum_s w_s q(. | s). Within a slot it ranks like q, so the top k
    overall lie among the slots' own top k."""
    n, slots, _ = slot_top.shape
    candidates = slot_top.reshape(n, slots * k)
    value = np.where(candidates >= 0, probability[np.maximum(candidates, 0)], -1.0) \
        * np.repeat(slot_weight, k, axis=1)
    value[candidates < 0] = -1.0
    width = min(k, slots * k)
    best = np.argsort(-value, axis=1, kind="stable")[:, :width]
    top = np.take_along_axis(candidates, best, axis=1)
    return np.where(np.take_along_axis(value, best, axis=1) > 0, top, -1)
