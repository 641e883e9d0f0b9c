"""The one data-source interface of a training run, and the one place that chooses its implementation.

`prepare(cfg)` returns `InMemoryData` (the whole table in memory: labels, windows, baselines and the
oracle) or, with `data.streaming`, `StreamingData` (events repartitioned by user hash and streamed one
partition at a time; memory stays flat as the data grows; baselines are skipped, they need the whole
table). The driver (`training.train.train`) only speaks this interface.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd

from events.errors import UserFacingError
from events.source import DatasetSource
from models.encoder_counts import EncoderCounts
from models.encoding import EventEncoder
from models.network import ModelConfig, SessionSignalsModel
from training.config import TrainRunConfig
from events.config_io import to_dict
from training.labels import SplitDates
from training.priors import popularity_log_prob, shares


@dataclass
class TrainingData(ABC):
    source: DatasetSource
    dates: SplitDates
    counts: EncoderCounts  # of the training window: the encoder and the priors are fitted from these
    encoder: EventEncoder
    datasets: dict  # split code -> torch Dataset (map-style in memory, iterable when streamed)
    model_cfg: ModelConfig

    kind: str = "in-memory"  # tagged on the MLflow parent run

    def log_popularity(self) -> np.ndarray:
        """(P,) log share of each product in the training window: the negatives' proposal, the bundle's fallback."""
        return popularity_log_prob(self.counts.id_counts(self.encoder.products, "products"))

    def priors(self) -> dict[str, list[float]]:
        """Category and brand shares in the training window: the bundle's answer for an empty history."""
        return {"category_prior": shares(self.counts.id_counts(self.encoder.categories, "categories")),
                "brand_prior": shares(self.counts.id_counts(self.encoder.brands, "brands"))}

    def encoder_window_events(self) -> pd.DataFrame | None:
        """The canonical events the encoder was fitted on (the bundle's list tables read them); None when
        they are not in memory."""
        return None

    def for_refit(self) -> "TrainingData":
        """This data with validation merged into training, for the final refit (`train.refit`)."""
        raise UserFacingError(f"train.refit needs the data in memory; {self.kind} data cannot refit "
                              "(set train.refit=false)")

    @abstractmethod
    def lineage_counts(self) -> dict[str, int]:
        """Row counts recorded beside the file hash and split dates (events, users, points per split...)."""

    def validation_sizes(self) -> dict[str, tuple[int, int | None]]:
        """task -> (validation points, positives or None); {} when unknown before a pass over the data."""
        return {}

    @abstractmethod
    def evaluate(self, model: SessionSignalsModel) -> dict[str, float]:
        """The model's test metrics (`training.metrics` names), on the test points every method shares."""

    @abstractmethod
    def base_rates(self) -> dict[str, float]:
        """Training-split intent and churn base rates (after `evaluate` when streamed)."""

    @abstractmethod
    def compare(self) -> dict[str, dict[str, float]]:
        """Baselines and the oracle on the same test points, each a nested MLflow run; {} when skipped."""

    @abstractmethod
    def log_to_parent(self) -> str:
        """Log the comparison (table, plots) on the active parent run; returns the table printed to the user."""


def model_config(cfg: TrainRunConfig, encoder: EventEncoder) -> ModelConfig:
    return ModelConfig(**encoder.sizes(), **to_dict(cfg.model))


def prepare(cfg: TrainRunConfig) -> TrainingData:
    """Split, labels, encoder and windows of the run's data, in memory or streamed (`data.streaming`)."""
    if cfg.data.streaming:
        if cfg.train.refit:  # said before any work, not after the first fit has run for hours
            raise UserFacingError("train.refit needs the data in memory; data.streaming=true cannot refit "
                                  "(set train.refit=false or data.streaming=false)")
        from training.streaming.prepare import prepare_streaming

        return prepare_streaming(cfg)
    from training.in_memory import prepare_in_memory

    return prepare_in_memory(cfg)
