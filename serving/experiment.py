"""An experiment's configuration, its validation, and the stable assignment of shoppers to arms.

Assignment: bucket = the first 8 bytes of SHA-256(`<experiment>:<user_id>`) as a big-endian integer, modulo
BUCKETS; the arms own consecutive ranges of buckets in the order they are listed, each `share * BUCKETS`
wide. It depends on nothing but the two names, so a shopper lands in the same arm in every worker, replica
and restart (and a warehouse can recompute it). Moving the boundary between two neighbouring arms (e.g.
challenger 10% -> 20%, taken from the champion listed before it) moves only the shoppers between the old and
the new boundary; add new arms at the end. A new experiment name draws a fresh, independent assignment.

The YAML (configs/experiment.yaml) names models by registry alias, registry version or bundle folder;
`signals serve --experiment` pins each to one version before any worker starts (serving/experiment_pinning.py)
and hands the workers the pinned form (`PinnedExperiment`) through SIGNALS_EXPERIMENT.
"""
from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from events.config_io import from_dict, load_config
from events.errors import UserFacingError

BUCKETS = 10_000
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""Experiment and arm names: they appear in file names and metric labels."""


@dataclass
class ArmConfig:
    name: str
    share: float
    """Fraction of shoppers, in steps of 1 / BUCKETS; the shares of all arms sum to 1."""
    alias: str | None = None
    """A registry alias of the served model (champion, challenger), ..."""
    version: int | None = None
    """... or a registry version, ..."""
    bundle: str | None = None
    """... or a bundle folder, ..."""
    holdout: bool = False
    """... or none: the holdout, answered without any model (see serving/README.md)."""


@dataclass
class AssignmentLogConfig:
    dir: str
    """Folder of the JSON-lines files (created if absent); checked writable at startup."""
    max_file_mb: float = 64.0
    max_file_minutes: float = 60.0
    queue_size: int = 100_000
    """Exposures held in memory for the writer; beyond it they are dropped and counted (never waited for)."""
    fsync_seconds: float = 5.0
    """Files are flushed to the OS after every write and fsynced this often, at rotation and at shutdown."""
    min_free_mb: float = 100.0
    """Less free space than this on the log's disk fails the startup and /readyz."""


@dataclass
class ExperimentConfig:
    name: str
    control: str
    """The arm the others are compared with, and that answers requests without a user_id."""
    arms: list[ArmConfig]
    log: AssignmentLogConfig
    model_name: str | None = None
    """Registered model the aliases and versions refer to (default: SIGNALS_MODEL_NAME or session-signals)."""


@dataclass(frozen=True)
class PinnedArm:
    name: str
    share: float
    bundle: str | None
    """The arm's bundle folder; None for the holdout."""
    identity: dict[str, str | None] | None
    """{name, version, run_id} of the model that answers; None for the holdout."""


@dataclass(frozen=True)
class PinnedExperiment:
    """What every worker serves: each arm resolved to one bundle. JSON in SIGNALS_EXPERIMENT."""

    name: str
    control: str
    arms: tuple[PinnedArm, ...]
    log: AssignmentLogConfig = field(compare=False)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "PinnedExperiment":
        return from_dict(cls, json.loads(text), prefix="SIGNALS_EXPERIMENT.")

    def configuration(self) -> dict:
        """What the manifest records (events/exposures.py): the arms, their shares and model versions."""
        return {"control": self.control, "arms": [
            {"name": a.name, "share": a.share, "holdout": a.bundle is None,
             "model": None if a.identity is None else {k: a.identity.get(k) for k in ("name", "version", "run_id")}}
            for a in self.arms]}


def load_experiment(path: str | Path) -> ExperimentConfig:
    """The experiment of a YAML file, validated; every error names the file and the key."""
    try:
        config = load_config(ExperimentConfig, path)
        validate(config)
    except UserFacingError as err:
        raise UserFacingError(f"{path}: {err}") from None
    return config


def validate(config: ExperimentConfig | PinnedExperiment) -> None:
    """The rules that typing alone does not catch; raises UserFacingError naming the key."""
    if not NAME_PATTERN.fullmatch(config.name):
        raise UserFacingError(f"name: {config.name!r} must be letters, digits, '.', '_' or '-' (at most 100)")
    if len(config.arms) < 2:
        raise UserFacingError(f"arms: an experiment needs at least two arms, got {len(config.arms)}")
    seen: set[str] = set()
    for i, arm in enumerate(config.arms):
        if arm.name in seen:
            raise UserFacingError(f"arms[{i}].name: duplicate arm {arm.name!r}")
        seen.add(arm.name)
        if not NAME_PATTERN.fullmatch(arm.name):
            raise UserFacingError(f"arms[{i}].name: {arm.name!r} must be letters, digits, '.', '_' or '-'")
        if not 0 < arm.share <= 1:
            raise UserFacingError(f"arms[{i}].share: {arm.share} must lie in (0, 1]")
        if abs(arm.share * BUCKETS - round(arm.share * BUCKETS)) > 1e-6:
            raise UserFacingError(f"arms[{i}].share: {arm.share} is finer than the split's step of 1/{BUCKETS}")
        if isinstance(arm, ArmConfig):
            given = [k for k in ("alias", "version", "bundle") if getattr(arm, k) is not None]
            given += ["holdout"] if arm.holdout else []
            if len(given) != 1:
                raise UserFacingError(f"arms[{i}]: give exactly one of alias, version, bundle or holdout: true "
                                      f"(got {', '.join(given) or 'none'})")
    total = sum(arm.share for arm in config.arms)
    if abs(total - 1) > 1e-6:
        raise UserFacingError(f"arms[*].share: the shares sum to {total:g}; they must sum to 1")
    control = next((arm for arm in config.arms if arm.name == config.control), None)
    if control is None:
        raise UserFacingError(f"control: {config.control!r} is not an arm ({', '.join(a.name for a in config.arms)})")
    if (control.holdout if isinstance(control, ArmConfig) else control.bundle is None):
        raise UserFacingError(f"control: {config.control!r} is the holdout; the control must answer with a model")


def bucket(experiment: str, user_id: str) -> int:
    """The shopper's bucket in [0, BUCKETS) for this experiment."""
    digest = hashlib.sha256(f"{experiment}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


class Split:
    """Shopper -> arm, by bucket ranges in the order the arms are listed."""

    def __init__(self, experiment: str, arms: list[str], shares: list[float]):
        self.experiment = experiment
        self.arms = list(arms)
        ends, total = [], 0
        for share in shares:
            total += round(share * BUCKETS)
            ends.append(total)
        self._ends = ends  # arm i owns buckets [ends[i-1], ends[i])

    @classmethod
    def of(cls, config: ExperimentConfig | PinnedExperiment) -> "Split":
        return cls(config.name, [a.name for a in config.arms], [a.share for a in config.arms])

    def arm_of(self, user_id: str) -> str:
        return self.arms[bisect.bisect_right(self._ends, bucket(self.experiment, user_id))]
