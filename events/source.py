"""Where a run's events come from: a loaded folder or the embedded simulator; its name, hash and identity.

Recording the lineage in MLflow is training's business (`training.tracking.log_lineage`); this module
only says what the data is.
"""
from __future__ import annotations

import hashlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from events.errors import UserFacingError
from events.schema import EVENTS_FILE

log = logging.getLogger(__name__)
GENERATED = Path("data/generated")
# Written last by `signals load` and `signals simulate`: without one, the events may be partial or stale.
FINISHED_MARKERS = ("load_report.json", "simulation.json")


@dataclass
class DatasetSource:
    name: str
    path: Path  # folder holding events.parquet (and oracle_*.parquet when simulated)
    events: pd.DataFrame  # empty when the events are streamed (never all in memory)
    sha256: str
    test_start: pd.Timestamp | None = None  # set when a separate test file fixes the split

    def dataset_key(self, dates) -> str:
        """Same key = same data and same split (`dates`: val_start, test_start): the champion rule only
        compares runs that share it."""
        text = f"{self.name}|{self.sha256}|{dates.val_start}|{dates.test_start}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def oracle_file(self, name: str) -> Path | None:
        path = self.path / name
        return path if path.is_file() else None


def events_file(path: Path, field: str = "data.path") -> Path:
    """The canonical events file of a folder (or the file itself); a clear error naming `field` if absent."""
    file = path / EVENTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise UserFacingError(f"{field}: no {EVENTS_FILE} in {path} (make one with `signals load` or `signals simulate`)")
    if not any((file.parent / name).is_file() for name in FINISHED_MARKERS):
        raise UserFacingError(f"{field}: {file.parent} holds no finished load ({' or '.join(FINISHED_MARKERS)} is "
                              "missing, e.g. a load was killed): run `signals load` or `signals simulate` again")
    return file


def dataset_files(data, churn_horizon_days: float) -> tuple[str, Path, Path, Path | None, str]:
    """(name, folder, events file, test events file or None, sha256 of the data) of a run's `data` section
    (`training.config.DataConfig`: path, test_path, name, simulate_events, simulate_seed).

    A run without `path` uses the embedded simulated shop. The name follows the data: the folder's name
    unless one is given.
    """
    folder = (Path(data.path) if data.path
              else simulated_dataset(data.simulate_events, data.simulate_seed, churn_horizon_days))
    main = events_file(folder)
    sha = file_sha256(main)
    test = None
    if data.test_path:
        test = events_file(Path(data.test_path), "data.test_path")
        sha = hashlib.sha256((sha + file_sha256(test)).encode()).hexdigest()
    return data.name or folder.name, folder, main, test, sha


def simulated_dataset(n_events: int, seed: int, churn_horizon_days: float) -> Path:
    """The embedded default data: simulated once per (size, seed, horizon) and reused."""
    horizon = int(round(churn_horizon_days))
    out = GENERATED / f"sim-{n_events}-seed{seed}-h{horizon}"
    if not (out / EVENTS_FILE).is_file():
        from events.simulator import load_simulator_config, simulate

        log.info("simulating %d events (seed %d) into %s", n_events, seed, out)
        config = load_simulator_config(None, [f"seed={seed}", f"oracle.churn_horizon_days={max(horizon, 1)}"])
        # A bar only on a terminal: redirected to a file, the closing log line says what was written.
        simulate(config, out, target_events=n_events, progress=sys.stderr.isatty())
    return out


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
