"""The shop's catalogue: hierarchical categories, brands, log-normal prices and Zipf-like popularity.

Products are numbered so that each category's products are contiguous (`category_start`), which lets
customers' choice tables be flat slices of the catalogue.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from events.simulator.config import CatalogueConfig

DEPARTMENTS = {
    "electronics": ["smartphone", "tablet", "audio.headphone", "audio.speaker", "video.tv", "camera.photo",
                    "camera.video", "clocks", "telephone", "console", "wearable.smartwatch", "audio.microphone"],
    "appliances": ["kitchen.refrigerators", "kitchen.washer", "kitchen.microwave", "kitchen.blender",
                   "kitchen.kettle", "environment.vacuum", "environment.air_conditioner",
                   "environment.water_heater", "personal.hair_cutter", "iron", "sewing_machine"],
    "computers": ["notebook", "desktop", "peripherals.monitor", "peripherals.keyboard", "peripherals.mouse",
                  "peripherals.printer", "components.videocards", "components.memory", "network.router"],
    "apparel": ["shoes", "shoes.sandals", "shoes.keds", "jeans", "shirt", "dress", "jacket", "underwear",
                "costume", "scarf", "trousers"],
    "furniture": ["living_room.sofa", "living_room.chair", "bedroom.bed", "kitchen.table", "bathroom.bath",
                  "office.desk", "universal.light"],
    "kids": ["toys", "carriage", "skates", "swing", "dolls", "puzzle"],
    "sport": ["bicycle", "tennis", "ski", "diving", "fitness.trainer", "football"],
    "auto": ["accessories.player", "accessories.videoregister", "accessories.compressor", "accessories.alarm",
             "parts.tyres"],
    "construction": ["tools.drill", "tools.saw", "tools.light", "components.faucet", "tools.welding"],
    "beauty": ["makeup.lipstick", "makeup.mascara", "skin_care.cream", "hair_care.shampoo", "fragrance"],
    "accessories": ["bag", "wallet", "umbrella", "sunglasses", "watch"],
    "country_yard": ["lawn_mower", "cultivator", "furniture.bench", "grill"],
}
LEAF_CATEGORY_NAMES = [f"{dept}.{leaf}" for dept, leaves in DEPARTMENTS.items() for leaf in leaves]

BRAND_SYLLABLES = ["ka", "lo", "mi", "ve", "ra", "to", "su", "ne", "do", "pi", "zen", "mar", "tek", "vo",
                   "li", "sa", "ber", "gon", "ta", "ri"]


@dataclass
class Catalogue:
    category_names: list[str]          # per category; the hierarchical name written to the events
    category_popularity: np.ndarray    # per category, sums to 1
    category_start: np.ndarray         # (n_categories + 1,) product index ranges per category
    brand_names: list[str]
    brand_popularity: np.ndarray       # per brand, sums to 1
    product_ids: list[str]             # per product, the string written to the events
    product_category: np.ndarray       # per product
    product_brand: np.ndarray          # per product (the true brand, also when not recorded)
    product_price: np.ndarray          # per product
    product_price_z: np.ndarray        # (log price - category mean log price) / category spread
    product_popularity: np.ndarray     # within its category, sums to 1 per category
    category_recorded: np.ndarray      # per product: False where the shop has no category for it
    brand_recorded: np.ndarray         # per product: False where the shop has no brand for it

    @property
    def n_products(self) -> int:
        return len(self.product_ids)

    @property
    def n_categories(self) -> int:
        return len(self.category_names)


def zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Zipf weights over n items in random order (so that an item's index says nothing of its rank)."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return rng.permutation(weights / weights.sum())


def build_catalogue(config: CatalogueConfig, rng: np.random.Generator) -> Catalogue:
    n_cat, n_brand = config.n_categories, config.n_brands
    category_popularity = zipf_weights(n_cat, config.category_popularity_exponent, rng)
    category_size = _category_sizes(config, category_popularity)
    category_start = np.concatenate([[0], np.cumsum(category_size)])
    n_products = int(category_start[-1])
    product_category = np.repeat(np.arange(n_cat), category_size)

    product_popularity = np.empty(n_products)
    for c in range(n_cat):
        lo, hi = category_start[c], category_start[c + 1]
        product_popularity[lo:hi] = zipf_weights(hi - lo, config.product_popularity_exponent, rng)

    brand_popularity = zipf_weights(n_brand, config.brand_popularity_exponent, rng)
    product_brand = _draw_brands(config, brand_popularity, product_category, rng)

    category_log_mean = rng.normal(config.log_price_mean, config.log_price_category_sd, n_cat)
    brand_premium = rng.normal(0.0, config.brand_log_price_premium_sd, n_brand)
    noise = rng.standard_normal(n_products)
    log_price = category_log_mean[product_category] + brand_premium[product_brand] \
        + config.log_price_within_category_sd * noise
    price = np.maximum(np.round(np.exp(log_price), 2), 0.5)
    price_z = (np.log(price) - category_log_mean[product_category]) / config.log_price_within_category_sd

    # Numeric-looking ids like the real shops', in an order unrelated to category.
    id_numbers = 1_000_000 + rng.permutation(n_products)
    return Catalogue(
        category_names=_category_names(n_cat),
        category_popularity=category_popularity,
        category_start=category_start,
        brand_names=_brand_names(n_brand),
        brand_popularity=brand_popularity,
        product_ids=[str(i) for i in id_numbers],
        product_category=product_category,
        product_brand=product_brand,
        product_price=price,
        product_price_z=price_z,
        product_popularity=product_popularity,
        category_recorded=rng.random(n_products) >= config.category_missing_rate,
        brand_recorded=rng.random(n_products) >= config.brand_missing_rate,
    )


def _category_sizes(config: CatalogueConfig, popularity: np.ndarray) -> np.ndarray:
    """Sizes proportional to popularity**exponent, at least 2 (something to compare with), summing to
    about n_products."""
    share = popularity ** config.products_per_category_exponent
    share /= share.sum()
    return np.maximum(np.round(share * config.n_products).astype(np.int64), 2)


def _draw_brands(config: CatalogueConfig, brand_popularity: np.ndarray, product_category: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Each category sells a window of `brands_per_category` brands starting at a random place in the brand
    list, weighted by brand popularity: big brands span several categories, small ones are niche."""
    n_brand = len(brand_popularity)
    width = min(config.brands_per_category, n_brand)
    first = rng.integers(0, n_brand, config.n_categories)
    window = (first[:, None] + np.arange(width)) % n_brand            # (n_categories, width)
    weights = brand_popularity[window]
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(product_category))
    column = (u[:, None] > cumulative[product_category]).sum(axis=1)
    return window[product_category, np.minimum(column, width - 1)]


def _category_names(n: int) -> list[str]:
    """Real-looking hierarchical names; beyond the built-in list they repeat with a numbered level."""
    base = LEAF_CATEGORY_NAMES
    return [base[i % len(base)] + (f".line{i // len(base)}" if i >= len(base) else "") for i in range(n)]


def _brand_names(n: int) -> list[str]:
    """Pronounceable distinct names built from syllables in base len(BRAND_SYLLABLES)."""
    names = []
    base = len(BRAND_SYLLABLES)
    for i in range(n):
        parts, rest = [], i + base          # at least two syllables
        while rest:
            rest, digit = divmod(rest, base)
            parts.append(BRAND_SYLLABLES[digit])
        names.append("".join(reversed(parts)))
    return names
