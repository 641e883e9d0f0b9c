"""`InMemoryData`: the whole event table in memory; the model is compared with every baseline and, on
simulated data, the oracle (`training.comparison`)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from events.loaders import read_events
from events.source import DatasetSource, dataset_files
from models.encoder_counts import EncoderCounts
from models.encoding import EventEncoder
from models.network import SessionSignalsModel
from training.baselines.next_item import next_query_rows
from training.comparison import Comparison
from training.config import TrainRunConfig
from training.labels import (
    SPLIT_NAMES, TEST, TRAIN, VAL, Labels, make_labels, merge_validation_into_training, naive_utc, split_dates,
)
from training.training_data import TrainingData, model_config
from training.window_predictions import predict
from training.windows import WindowDataset, build_split

log = logging.getLogger(__name__)


@dataclass
class InMemoryData(TrainingData):
    labels: Labels | None = None
    cfg: TrainRunConfig | None = None
    comparison: Comparison | None = None
    source_counts: dict[str, int] | None = None  # what reading the source set aside (counted, not lost)

    def for_refit(self) -> "InMemoryData":
        """The same data with validation merged into training: encoder, priors and windows refit on every
        event before `test_start`, so products first seen in the validation window can be recommended."""
        labels = merge_validation_into_training(self.labels)
        return build_in_memory(self.cfg, self.source, labels, self.source_counts)

    def encoder_window_events(self) -> pd.DataFrame:
        return encoder_window(self.labels)

    def lineage_counts(self) -> dict[str, int]:
        labels = self.labels
        counts = {"events": len(labels.events), "users": labels.events["user_id"].nunique(),
                  "sessions": labels.events["session_id"].nunique(), **(self.source_counts or {})}
        for code, split in SPLIT_NAMES.items():
            counts[f"intent_points_{split}"] = int(((labels.intent_split == code) & (labels.intent >= 0)).sum())
            counts[f"next_points_{split}"] = int((labels.next_split == code).sum())
            counts[f"churn_points_{split}"] = int((labels.churn["split"] == code).sum())
        return counts

    def validation_sizes(self) -> dict[str, tuple[int, int | None]]:
        labels = self.labels
        intent = labels.intent[(labels.intent_split == VAL) & (labels.intent >= 0)]
        churn = labels.churn.loc[labels.churn["split"] == VAL, "label"]
        return {"intent": (len(intent), int(intent.sum())), "churn": (len(churn), int(churn.sum())),
                "next": (len(next_query_rows(labels, self.encoder, VAL)), None)}

    def evaluate(self, model: SessionSignalsModel) -> dict[str, float]:
        self.comparison = Comparison(self.labels, self.encoder, self.cfg, self.source)
        return self.comparison.add_model(predict(model, self.datasets[TEST]))

    def base_rates(self) -> dict[str, float]:
        train_intent = self.labels.intent[(self.labels.intent_split == TRAIN) & (self.labels.intent >= 0)]
        train_churn = self.labels.churn.loc[self.labels.churn["split"] == TRAIN, "label"]
        return {"intent_base_rate": float(train_intent.mean()) if len(train_intent) else 0.0,
                "churn_base_rate": float(train_churn.mean()) if len(train_churn) else 0.0}

    def compare(self) -> dict[str, dict[str, float]]:
        return self.comparison.run_baselines_and_oracle()

    def log_to_parent(self) -> str:
        self.comparison.log_to_parent()
        return self.comparison.table()


def read_source(cfg: TrainRunConfig) -> tuple[DatasetSource, dict[str, int]]:
    """The run's events in memory; a separate test file fixes the test start (training rows from then on are
    replaced by it)."""
    name, folder, main, test, sha = dataset_files(cfg.data, cfg.labels.churn_horizon_days)
    events = read_events(main)
    test_start = None
    source_counts: dict[str, int] = {}
    if test is not None:
        test_events = read_events(test)
        test_start = test_events["ts"].min()
        late = int((events["ts"] >= test_start).sum())
        if late:
            # The test file owns the time from its first event on: training rows there would overlap it.
            log.warning("%d of %d training events lie at or after the test file's first event (%s) and are not "
                        "used (lineage: lineage.train_events_after_test_start)", late, len(events), test_start)
        events = pd.concat([events[events["ts"] < test_start], test_events], ignore_index=True)
        source_counts["train_events_after_test_start"] = late
    log.info("dataset %s: %d events from %s", name, len(events), folder)
    return DatasetSource(name, folder, events, sha, test_start), source_counts


def prepare_in_memory(cfg: TrainRunConfig) -> InMemoryData:
    source, source_counts = read_source(cfg)
    dates = split_dates(source.events, cfg.split, source.test_start)
    return build_in_memory(cfg, source, make_labels(source.events, dates, cfg.labels), source_counts)


def encoder_window(labels: Labels) -> pd.DataFrame:
    """The events the encoder and priors are fitted on: before `val_start` (`test_start` after a refit)."""
    events = labels.events
    return events[naive_utc(events["ts"]) < np.datetime64(labels.dates.val_start.tz_localize(None), "us")]


def build_in_memory(cfg: TrainRunConfig, source: DatasetSource, labels: Labels,
                    source_counts: dict[str, int]) -> InMemoryData:
    """Encoder (fitted on the training window), encoded events and the windows of every split."""
    dates = labels.dates
    counts = EncoderCounts.of_events(encoder_window(labels))
    encoder = EventEncoder.from_counts(counts, min_count=cfg.labels.min_count)
    encoded = encoder.encode(labels.events)
    window = cfg.model.max_len
    datasets = {s: WindowDataset(build_split(labels, encoded, s, window), window) for s in (TRAIN, VAL, TEST)}
    log.info("split %s; windows train %d, val %d, test %d; catalogue %d products",
             dates.to_dict(), *(len(datasets[s]) for s in (TRAIN, VAL, TEST)), len(encoder.products))
    return InMemoryData(source, dates, counts, encoder, datasets, model_config(cfg, encoder),
                        labels=labels, cfg=cfg, source_counts=source_counts)
