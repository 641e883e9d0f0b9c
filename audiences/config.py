"""The typed thresholds of `signals score`: audiences/thresholds.yaml plus key=value overrides."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from events.config_io import load_config
from events.errors import UserFacingError
from serving.segments import SegmentRules

DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.yaml")


@dataclass(frozen=True)
class ScoringConfig:
    k: int
    k_categories: int
    k_brands: int
    batch_size: int
    events_per_partition: int


@dataclass(frozen=True)
class TriggerConfig:
    max_idle_days: float


@dataclass(frozen=True)
class BestSellerConfig:
    n: int
    days: float


@dataclass(frozen=True)
class LookalikeConfig:
    size: int
    repeat_orders: int


@dataclass(frozen=True)
class AudienceConfig:
    """No defaults here: the YAML file is the one place they are written (a missing key is an error)."""
    scoring: ScoringConfig
    rules: SegmentRules
    triggers: TriggerConfig
    best_sellers: BestSellerConfig
    lookalikes: LookalikeConfig


def load_thresholds(path: Path | None = None, overrides: list[str] | None = None) -> AudienceConfig:
    path = path or DEFAULT_THRESHOLDS
    try:
        cfg = load_config(AudienceConfig, path, overrides or [])
    except TypeError as err:  # a section or key missing from the file
        raise UserFacingError(f"thresholds {path}: {err}") from err
    for name in ("k", "k_categories", "k_brands", "batch_size", "events_per_partition"):
        if getattr(cfg.scoring, name) < 1:
            raise UserFacingError(f"scoring.{name} must be at least 1")
    return cfg
