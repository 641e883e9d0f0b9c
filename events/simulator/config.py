"""Knobs of the shopper simulator, with defaults calibrated against the real samples in ../shared/datasets.

Calibration, measured the same way on the raw files and on a simulation at the defaults (seed 0) by
`python -m events.simulator.calibration --events 300000`. Taobao has no sessions: cut at 30 minutes
of inactivity. Online Retail and CDNOW are purchase logs (repeat-purchase rows only); REES46's sample
is 2.5 hours of one day (no visit or hour-of-day rows).

| figure | REES46 head | Taobao | Online Retail | CDNOW | simulated (300,000 events) |
|---|---|---|---|---|---|
| view share | 0.979 | 0.899 | - | - | 0.948 |
| cart share | 0.010 | 0.052 | - | - | 0.034 |
| remove_from_cart share (no such events in either sample) | - | - | - | - | 0.006 |
| purchase share | 0.011 | 0.019 | - | - | 0.013 |
| events per session: mean | 2.63 | 6.21 | - | - | 3.80 |
| events per session: median / p90 | 2 / 6 | 3 / 15 | - | - | 2 / 8 |
| sessions with a purchase | 0.026 | 0.092 | - | - | 0.044 |
| sessions with a cart that end without purchase | 0.686 | 0.905 | - | - | 0.729 |
| repeated product views within a session | 0.257 | 0.110 | - | - | 0.190 |
| distinct categories per session | 1.14 | 2.78 | - | - | 1.44 |
| seconds between events: median / p90 | 32 / 106 | 55 / 345 | - | - | 45 / 209 |
| sessions per user in 9 days: mean / median | - | 17.3 / 15 | - | - | 6.3 / 4 |
| hours between visits (9 days): median / p90 | - | 5.7 / 24.8 | - | - | 7.4 / 36.2 |
| session starts 18-24 h local / 0-6 h local | - | 0.36 / 0.05 | - | - | 0.36 / 0.05 |
| views on the top 10% of viewed products (5,000-event sample) | 0.39 | 0.16 | - | - | 0.41 |
| log price of viewed products: mean / sd | 5.05 / 1.27 | - | - | - | 4.86 / 1.31 |
| log price sd within a category (named categories: 0.56) | 0.48 | - | - | - | 0.54 |
| brand missing | 0.126 | - | - | - | 0.157 |
| days between purchases: median | - | 2.0 | 28.0 | 34.0 | 10.0 |
| no purchase in next 14 days, buyers of last 30 days | - | - | 0.79 | 0.83 | 0.83 |

How the defaults follow from it:
- Session length: a per-event chance to leave with mean 0.3 across customers (Beta, concentration 10)
  gives 3.8 events per session, between REES46 (2.6; a 2.5-hour head, many sessions cut) and Taobao
  (6.2), near YooChoose (3.95) and Diginetica (4.15) clicks per session.
- Conversion: propensity logit mean -0.2 gives 4.4% of sessions with a purchase (REES46 2.6%, Taobao
  9.2%) and 73% of carting sessions without one (REES46 69%, Taobao 90%, where the cart doubles as a
  wishlist); the event mix lands between the two shops.
- detail_share 0.2: 19% repeated views of a product within a session (REES46 26%, Taobao 11%).
- Dwell: median 45 s, log sd 1.2 -> 45 / 209 s (REES46 32 / 106, Taobao 55 / 345, YooChoose median 56).
- Hour of day: Taobao's session starts per local hour, used as the profile (36% of starts 18-24 h).
- Prices: category mean log prices N(5.1, 0.99), within-category sd 0.56 (REES46 between / within
  category). Viewed products average 4.86 rather than 5.1 because price-sensitive customers look at
  cheaper products (REES46's viewed mean is 5.05).
- Popularity: Zipf 0.9 over categories and 1.0 over products within one put 41% of the views of a
  5,000-event sample on the top 10% of products (REES46 39%; Taobao's 16% comes from 413 customers'
  long histories over 31k items).
- Brand missing on 12.6% of products, as on REES46 rows (event-weighted it comes out 15.7%).
- Visits: 2 visits a day while active (Gamma shape 1.5 across customers), a dormant spell after 3% of
  sessions without purchase and after 80% of purchases (mean 30 days: the lull after buying), churn
  after 2% / 1.5% of sessions. That gives 6.3 sessions per customer in 9 days and 7.4 h between
  visits, sparser than Taobao's app users (17.3, 5.7 h) as suits a web shop, and 83% of last-30-day
  buyers with no purchase in the next 14 days (Online Retail 79%, CDNOW 83%). The median 10 days
  between purchases is bounded by the 60-day run (Online Retail 28 and CDNOW 34 over 13-18 months).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path

from events.config_io import load_config
from events.errors import UserFacingError
from events.simulator.complements_config import ComplementConfig, complement_checks
from events.simulator.treatment_config import TreatmentConfig, treatment_checks

# Share of sessions starting in each local hour (0..23): Taobao UserBehavior session starts
# (30 min inactivity cut, UTC+8), 7,269 sessions. Evening peak at 20-21 h, trough at 3-4 h.
TAOBAO_HOURLY_SESSION_STARTS = [
    0.024, 0.010, 0.005, 0.004, 0.003, 0.007, 0.019, 0.027, 0.043, 0.049, 0.056, 0.058,
    0.056, 0.060, 0.052, 0.057, 0.055, 0.055, 0.054, 0.064, 0.070, 0.071, 0.058, 0.043,
]


@dataclass
class CatalogueConfig:
    n_products: int = 10_000
    n_categories: int = 150
    n_brands: int = 400
    category_popularity_exponent: float = 0.9
    """Zipf exponent of category popularity (rank r gets weight r**-s)."""
    products_per_category_exponent: float = 0.5
    """Category sizes grow as popularity**this: popular categories hold more products, less than in proportion."""
    product_popularity_exponent: float = 1.0
    """Zipf exponent of product popularity within a category."""
    brand_popularity_exponent: float = 1.0
    brands_per_category: int = 12
    """Each category draws its products' brands from this many brands (a window of the brand list)."""
    log_price_mean: float = 5.1
    """Mean over categories of the category's mean log price (REES46: 4.48 over categories, 5.05 over
    viewed products; see above)."""
    log_price_category_sd: float = 0.99
    """Spread of category mean log prices (REES46: 0.99)."""
    log_price_within_category_sd: float = 0.56
    """Log-normal spread of prices within a category (REES46 median over categories: 0.56)."""
    brand_log_price_premium_sd: float = 0.25
    """Brands shift all their prices by exp(N(0, this)): premium and budget brands."""
    brand_missing_rate: float = 0.126
    """Share of products whose brand the shop does not record (REES46: 12.6%)."""
    category_missing_rate: float = 0.02
    """Share of products with no category; REES46 lacks a category code on 31% of rows but always has a
    category id a loader can use, so only a few nulls are kept here, to exercise null handling."""


@dataclass
class CustomerConfig:
    interest_categories_mean: float = 4.0
    """Each customer browses 1 + Poisson(mean - 1) categories (at most max_interest_categories)."""
    max_interest_categories: int = 8
    interest_concentration: float = 1.0
    """Dirichlet concentration of a customer's weights over their categories (lower: more focused)."""
    favourite_brands: int = 2
    brand_view_boost: float = 3.0
    """Favourite-brand products are this many times more likely to be viewed."""
    brand_acceptance_bonus: float = 0.5
    """... and get this much more logit of being carted or bought."""
    price_sensitivity_mean: float = 0.8
    price_sensitivity_sd: float = 0.4
    """Per-customer price sensitivity b: acceptance logit falls by b per within-category price z-score."""
    price_choice_weight: float = 0.5
    """Viewing weight exp(-weight * b * z): price-sensitive customers look at cheaper products."""
    propensity_logit_mean: float = -0.2
    """Mean purchase propensity (logit); the main conversion-rate knob."""
    propensity_logit_sd: float = 1.0
    propensity_drift_sd_per_day: float = 0.02
    """Each customer's propensity drifts linearly at a rate drawn from N(0, this) per day."""
    abandon_per_step_mean: float = 0.3
    """Mean over customers of the chance to leave after each event (sets session length)."""
    abandon_per_step_concentration: float = 10.0
    """Beta concentration of that chance across customers: lower gives a heavier tail of long sessions."""
    abandon_per_step_min: float = 0.02
    """Floor on that chance, so that no customer's sessions run on for hundreds of events."""
    visits_per_day_mean: float = 2.0
    """Mean visit rate while active (not dormant); Gamma distributed across customers."""
    visits_per_day_shape: float = 1.5


@dataclass
class VisitConfig:
    dormancy_probability: float = 0.03
    """After a session without purchase, chance of a dormant spell before the next visit."""
    dormancy_probability_after_purchase: float = 0.8
    """After a purchase customers more often go quiet for a while."""
    dormant_gap_days_mean: float = 30.0
    churn_hazard: float = 0.02
    """After a session without purchase, chance the customer never comes back."""
    churn_hazard_after_purchase: float = 0.015
    hourly_profile: list[float] = field(default_factory=lambda: list(TAOBAO_HOURLY_SESSION_STARTS))
    """Relative visit intensity per local hour 0..23 (normalised to mean 1)."""
    utc_offset_hours: int = 0
    """The shop's time zone: hourly_profile is in local time, timestamps are UTC."""
    dwell_seconds_median: float = 45.0
    """Median time between events of a session (REES46 32 s, Taobao 55 s, YooChoose 56 s)."""
    dwell_log_sd: float = 1.2
    checkout_dwell_seconds_median: float = 3.0
    """Purchase events of one checkout follow each other within seconds."""


@dataclass
class FunnelConfig:
    """Transition weights of the session funnel; see events/simulator/funnel_model.py for the chain."""

    max_cart_items: int = 4
    cart_rate: float = 0.16
    """After a view: chance (times propensity and price acceptance) of adding the product to the cart."""
    buy_now_rate: float = 0.02
    """After a view: chance (times propensity and acceptance) of buying the product at once."""
    checkout_rate_from_view: float = 0.2
    """After a view, with a non-empty cart: chance (times propensity) of checking out."""
    checkout_rate_from_cart: float = 0.3
    """Right after a cart change: chance (times propensity) of checking out."""
    remove_rate_from_cart: float = 0.45
    """Right after a cart change: chance (times 1 - propensity) of removing an item."""
    acceptance_logit: float = 1.0
    """Price acceptance is sigmoid(this - sensitivity * price_z + favourite-brand bonus)."""
    detail_share: float = 0.2
    """Of the views that follow a view: share that re-open the same product (detail view)."""
    compare_share: float = 0.35
    """... share that compare within the same category (a fresh draw from the customer's choices there,
    which favours prices they like); the rest browse (a category by the customer's weights, then a product)."""
    compare_share_per_sensitivity: float = 0.15
    """Price-sensitive customers compare more: compare share moves by this per unit of sensitivity."""
    continue_after_purchase: float = 0.3
    """Chance of browsing on after a purchase instead of leaving."""


@dataclass
class OracleConfig:
    churn_horizon_days: int = 14
    next_top_k: int = 20


@dataclass
class SimulatorConfig:
    seed: int = 0
    start_date: str = "2026-01-01"
    """First day of the simulation (UTC midnight)."""
    days: int = 60
    n_users: int = 10_000
    """Customers to simulate; `signals simulate --events N` derives it from N instead."""
    users_per_block: int = 4_000
    """Customers generated and written together; bounds memory (peak RSS about 750 MB at the default)."""
    catalogue: CatalogueConfig = field(default_factory=CatalogueConfig)
    customers: CustomerConfig = field(default_factory=CustomerConfig)
    visits: VisitConfig = field(default_factory=VisitConfig)
    funnel: FunnelConfig = field(default_factory=FunnelConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)
    treatment: TreatmentConfig = field(default_factory=TreatmentConfig)
    """A randomised message mid-session and its heterogeneous effect (issue 14); off by default."""
    complements: ComplementConfig = field(default_factory=ComplementConfig)
    """Main products with accessories bought after them, and their truth in complements.parquet (issue 13);
    off by default (main_share 0)."""


def validate(config: SimulatorConfig) -> SimulatorConfig:
    """Reject settings the simulator cannot honour, naming the key."""
    checks = [
        ("days", config.days >= 1, "must be at least 1"),
        ("n_users", 1 <= config.n_users < 10 ** 8, "must be between 1 and 99,999,999 (8-digit user ids)"),
        ("users_per_block", config.users_per_block >= 1, "must be at least 1"),
        ("catalogue.n_categories", config.catalogue.n_categories >= 1, "must be at least 1"),
        ("catalogue.n_brands", config.catalogue.n_brands >= 1, "must be at least 1"),
        ("catalogue.n_products", config.catalogue.n_products >= 2 * config.catalogue.n_categories,
         "must be at least 2 per category"),
        ("customers.max_interest_categories", config.customers.max_interest_categories >= 1, "must be at least 1"),
        ("customers.visits_per_day_mean", config.customers.visits_per_day_mean > 0, "must be positive"),
        ("customers.abandon_per_step_mean", 0 < config.customers.abandon_per_step_mean < 1, "must be in (0, 1)"),
        ("customers.abandon_per_step_min", 0 < config.customers.abandon_per_step_min < 1, "must be in (0, 1)"),
        ("visits.dormant_gap_days_mean", config.visits.dormant_gap_days_mean > 0, "must be positive"),
        ("visits.hourly_profile", len(config.visits.hourly_profile) == 24
         and min(config.visits.hourly_profile) >= 0 and sum(config.visits.hourly_profile) > 0,
         "needs 24 non-negative weights, not all zero"),
        ("visits.churn_hazard + visits.dormancy_probability",
         config.visits.churn_hazard + config.visits.dormancy_probability <= 1, "must not exceed 1"),
        ("visits.churn_hazard_after_purchase + visits.dormancy_probability_after_purchase",
         config.visits.churn_hazard_after_purchase + config.visits.dormancy_probability_after_purchase <= 1,
         "must not exceed 1"),
        ("funnel.max_cart_items", config.funnel.max_cart_items >= 1, "must be at least 1"),
        ("funnel.cart_rate + funnel.buy_now_rate + funnel.checkout_rate_from_view",
         config.funnel.cart_rate + config.funnel.buy_now_rate + config.funnel.checkout_rate_from_view <= 1,
         "must not exceed 1"),
        ("funnel.checkout_rate_from_cart + funnel.remove_rate_from_cart",
         config.funnel.checkout_rate_from_cart + config.funnel.remove_rate_from_cart <= 1, "must not exceed 1"),
        ("funnel.detail_share", 0 <= config.funnel.detail_share < 0.9, "must be in [0, 0.9)"),
        ("oracle.churn_horizon_days", config.oracle.churn_horizon_days >= 1, "must be at least 1"),
        ("oracle.next_top_k", config.oracle.next_top_k >= 1, "must be at least 1"),
    ]
    rates = {
        "catalogue.brand_missing_rate": config.catalogue.brand_missing_rate,
        "catalogue.category_missing_rate": config.catalogue.category_missing_rate,
        "visits.churn_hazard": config.visits.churn_hazard,
        "visits.churn_hazard_after_purchase": config.visits.churn_hazard_after_purchase,
        "visits.dormancy_probability": config.visits.dormancy_probability,
        "visits.dormancy_probability_after_purchase": config.visits.dormancy_probability_after_purchase,
        "funnel.continue_after_purchase": config.funnel.continue_after_purchase,
        "funnel.compare_share": config.funnel.compare_share,
    }
    checks += [(key, 0 <= value <= 1, "must be in [0, 1]") for key, value in rates.items()]
    checks += treatment_checks(config.treatment)
    checks += complement_checks(config.complements)
    for key, ok, message in checks:
        if not ok:
            raise UserFacingError(f"simulator config: {key} {message}")
    try:
        start_datetime(config)
    except ValueError as err:
        raise UserFacingError(f"simulator config: start_date {config.start_date!r} is not a date like 2026-01-01") from err
    return config


def start_datetime(config: SimulatorConfig) -> datetime:
    return datetime.combine(date.fromisoformat(config.start_date), time(), tzinfo=timezone.utc)


def load_simulator_config(path: str | Path | None = None, overrides: list[str] | None = None) -> SimulatorConfig:
    """Defaults, then the YAML file, then key=value overrides (unknown keys are errors), validated."""
    return validate(load_config(SimulatorConfig, path, overrides))
