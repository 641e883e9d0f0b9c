"""The assignment log of an experiment: what the server writes (serving/assignment_log.py) and the readout
reads (experiments/), in one place so the two cannot drift.

A log folder holds JSON-lines files `exposures-<experiment>-<opened UTC>-<host>-<pid>.jsonl`, one line per
exposure (a shopper answered by an arm) with EXPOSURE_FIELDS, and one manifest per experiment
`experiment-<name>.json`: the list of configurations it was served with (arms, shares, model versions).
A server killed with SIGKILL may leave a last line without its newline: the reader skips and counts it.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from events.errors import UserFacingError

EXPOSURE_FIELDS = ("ts", "experiment", "arm", "user_id", "model_version", "request_id")
FILE_PREFIX, FILE_SUFFIX = "exposures-", ".jsonl"


def exposure_line(ts: datetime, experiment: str, arm: str, user_id: str, model_version: str | None,
                  request_id: str) -> str:
    """One exposure as its log line (ts: ISO 8601 with its UTC offset)."""
    return json.dumps({"ts": ts.isoformat(), "experiment": experiment, "arm": arm, "user_id": user_id,
                       "model_version": model_version, "request_id": request_id}, separators=(",", ":")) + "\n"


def log_file_name(experiment: str, opened: datetime, host: str, pid: int) -> str:
    return f"{FILE_PREFIX}{experiment}-{opened.strftime('%Y%m%dT%H%M%S%fZ')}-{host}-{pid}{FILE_SUFFIX}"


def write_exposures(exposures: pd.DataFrame, folder: str | Path, host: str = "offline") -> Path:
    """A DataFrame of EXPOSURE_FIELDS as one log file, as a server writes it (simulated experiments, tests)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    first = exposures.iloc[0]
    path = folder / log_file_name(str(first["experiment"]), pd.Timestamp(first["ts"]).to_pydatetime(), host, 0)
    with open(path, "w") as f:
        f.writelines(exposure_line(pd.Timestamp(r.ts).to_pydatetime(), r.experiment, r.arm, r.user_id, r.model_version,
                                   r.request_id) for r in exposures.itertuples(index=False))
    return path


@dataclass(frozen=True)
class ExposureRead:
    exposures: pd.DataFrame
    """EXPOSURE_FIELDS, ts as UTC datetimes, in file then line order."""
    files: int
    truncated_lines: int
    """Last lines without their newline (a server killed mid-write): skipped."""


def read_exposures(folder: str | Path) -> ExposureRead:
    """Every exposure line under `folder`; a malformed line (other than a cut-off last one) is an error naming
    the file and line."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserFacingError(f"--log {folder}: no such folder")
    files = sorted(folder.glob(f"{FILE_PREFIX}*{FILE_SUFFIX}"))
    frames, truncated = [], 0
    for path in files:
        text = path.read_text()
        if text and not text.endswith("\n"):
            text, truncated = text[:text.rfind("\n") + 1], truncated + 1
        frames.append(_parse(path, text.splitlines()))
    exposures = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(EXPOSURE_FIELDS))
    exposures["ts"] = pd.to_datetime(exposures["ts"], utc=True, format="ISO8601")
    return ExposureRead(exposures, len(files), truncated)


def _parse(path: Path, lines: list[str]) -> pd.DataFrame:
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except ValueError as err:
            raise UserFacingError(f"{path}:{number}: not a JSON exposure line ({err})") from None
        missing = [f for f in EXPOSURE_FIELDS if not isinstance(row, dict) or f not in row]
        if missing:
            raise UserFacingError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
        rows.append(row)
    return pd.DataFrame(rows, columns=list(EXPOSURE_FIELDS))


def manifest_path(folder: str | Path, experiment: str) -> Path:
    return Path(folder) / f"experiment-{experiment}.json"


def record_configuration(folder: str | Path, experiment: str, configuration: dict) -> None:
    """Append `configuration` to the experiment's manifest unless it is already the latest entry. Every worker
    calls this at startup: the result is the same whichever writes last (written whole, then renamed)."""
    path = manifest_path(folder, experiment)
    history = read_configurations(folder, experiment)
    if history and history[-1] == configuration:
        return
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".manifest-", delete=False) as tmp:
        json.dump(history + [configuration], tmp, indent=2)
    os.replace(tmp.name, path)


def read_configurations(folder: str | Path, experiment: str) -> list[dict]:
    """The configurations an experiment was served with, oldest first ([] when none was recorded)."""
    path = manifest_path(folder, experiment)
    if not path.is_file():
        return []
    try:
        history = json.loads(path.read_text())
    except ValueError as err:
        raise UserFacingError(f"{path}: not a JSON manifest ({err})") from None
    if not isinstance(history, list):
        raise UserFacingError(f"{path}: expected a list of configurations")
    return history
