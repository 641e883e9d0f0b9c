"""Knobs of the complementary products (accessories bought after a main product: camera -> case, battery).

Off by default: with `main_share: 0` the simulator draws, writes and summarises exactly what it did before.
What each knob does is in events/simulator/complements.py.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ComplementConfig:
    main_share: float = 0.0
    """Share of products that are main items with accessories; 0 turns complements off (no complements.parquet)."""
    accessories_min: int = 1
    accessories_max: int = 3
    """Each main item has between these many accessories (uniform), distinct products of other categories."""
    accessory_categories: int = 3
    """Each category's main items draw their accessories from this many other categories (cameras -> bags,
    batteries, tripods): the relation has a structure a model can generalise over, as in a real shop."""
    strength_min: float = 0.3
    """Each (main, accessory) pair's strength is uniform in [strength_min, 1]."""
    view_rate: float = 0.6
    """After buying a main item, the shopper views each of its accessories with chance view_rate * strength ..."""
    buy_rate: float = 0.4
    """... and, having viewed one, carts it with this chance; the carted accessories are then bought together."""


def complement_checks(config: ComplementConfig) -> list[tuple[str, bool, str]]:
    """(key, ok, message) for simulator.config.validate."""
    return [
        ("complements.main_share", 0 <= config.main_share <= 1, "must be in [0, 1]"),
        ("complements.accessories_min", config.accessories_min >= 1, "must be at least 1"),
        ("complements.accessories_max", config.accessories_max >= config.accessories_min,
         "must be at least complements.accessories_min"),
        ("complements.accessory_categories", config.accessory_categories >= 1, "must be at least 1"),
        ("complements.strength_min", 0 < config.strength_min <= 1, "must be in (0, 1]"),
        ("complements.view_rate", 0 <= config.view_rate <= 1, "must be in [0, 1]"),
        ("complements.buy_rate", 0 <= config.buy_rate <= 1, "must be in [0, 1]"),
    ]
