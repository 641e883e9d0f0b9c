"""Where a run's events come from (a loaded folder or the embedded simulator) and their lineage in MLflow."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from training.config import DataConfig
from training.labels import SPLIT_NAMES, Labels, SplitDates
from training.loaders import read_events
from training.schema import EVENTS_FILE

log = logging.getLogger(__name__)
GENERATED = Path("data/generated")


@dataclass
class DatasetSource:
    name: str
    path: Path  # folder holding events.parquet (and oracle_*.parquet when simulated)
    events: pd.DataFrame
    sha256: str
    test_start: pd.Timestamp | None = None  # set when a separate test file fixes the split

    def dataset_key(self, dates: SplitDates) -> str:
        """Same key = same data and same split: the champion rule only compares runs that share it."""
        text = f"{self.name}|{self.sha256}|{dates.val_start}|{dates.test_start}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def oracle_file(self, name: str) -> Path | None:
        path = self.path / name
        return path if path.is_file() else None

    def log_lineage(self, dates: SplitDates, labels: Labels) -> None:
        """Dataset, file hash, split dates and row counts, through mlflow.log_input and params."""
        import mlflow  # here: preparing data (fitting.prepare) must not need MLflow

        counts = {
            "events": len(labels.events),
            "users": labels.events["user_id"].nunique(),
            "sessions": labels.events["session_id"].nunique(),
        }
        for code, split in SPLIT_NAMES.items():
            counts[f"intent_points_{split}"] = int(((labels.intent_split == code) & (labels.intent >= 0)).sum())
            counts[f"next_points_{split}"] = int((labels.next_split == code).sum())
            counts[f"churn_points_{split}"] = int((labels.churn["split"] == code).sum())
        summary = pd.DataFrame([{**counts, **dates.to_dict(), "sha256": self.sha256}])
        dataset = mlflow.data.from_pandas(summary, source=str(self.path.resolve()), name=self.name, digest=self.sha256[:16])
        mlflow.log_input(dataset, context="training")
        mlflow.log_params({"lineage.path": str(self.path), "lineage.sha256": self.sha256,
                           **{f"lineage.{k}": v for k, v in {**counts, **dates.to_dict()}.items()}})


def prepare_dataset(cfg: DataConfig, churn_horizon_days: float = 7.0) -> DatasetSource:
    """The run's events; simulated data gets its churn oracle at the run's churn horizon."""
    path = Path(cfg.path) if cfg.path else simulated_dataset(cfg.simulate_events, cfg.simulate_seed, churn_horizon_days)
    events = read_events(path)
    name = cfg.name or path.name
    sha = file_sha256(path / EVENTS_FILE)
    test_start = None
    if cfg.test_path:
        test_events = read_events(Path(cfg.test_path))
        test_start = test_events["ts"].min()
        if events["ts"].max() >= test_start:
            log.warning("training events reach past the test file's first event; the split uses the test start")
        events = pd.concat([events[events["ts"] < test_start], test_events], ignore_index=True)
        sha = hashlib.sha256((sha + file_sha256(Path(cfg.test_path) / EVENTS_FILE)).encode()).hexdigest()
    log.info("dataset %s: %d events from %s", name, len(events), path)
    return DatasetSource(name, path, events, sha, test_start)


def simulated_dataset(n_events: int, seed: int, churn_horizon_days: float) -> Path:
    """The embedded default data: simulated once per (size, seed, horizon) and reused."""
    horizon = int(round(churn_horizon_days))
    out = GENERATED / f"sim-{n_events}-seed{seed}-h{horizon}"
    if not (out / EVENTS_FILE).is_file():
        from training.simulator import load_simulator_config, simulate

        log.info("simulating %d events (seed %d) into %s", n_events, seed, out)
        config = load_simulator_config(None, [f"seed={seed}", f"oracle.churn_horizon_days={max(horizon, 1)}"])
        simulate(config, out, target_events=n_events, progress=True)
    return out


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
