"""Optuna storage: one RDB study shared by every worker (sqlite on one machine, PostgreSQL across many).

Workers that die are noticed through heartbeats: a running trial records one every
`tune.heartbeat_interval` seconds; a trial silent for `tune.grace_period` seconds is failed by whichever
worker looks next, and re-queued (same parameters, state WAITING) for the next free worker, at most
`tune.max_retry` times. A killed `signals tune` therefore resumes the same study when started again.
"""
from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from events.config_io import redact_uri
from events.errors import UserFacingError
from training.tuning.config import PrunerConfig, SamplerConfig, TuneConfig

log = logging.getLogger(__name__)

DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # what counts towards --trials


def resolve_storage_url(url: str = "") -> str:
    url = url or os.environ.get("OPTUNA_STORAGE", "") or DEFAULT_STORAGE
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    elif "://" not in url:
        raise UserFacingError(f"--storage {url!r}: expected a database URL such as sqlite:///mlruns/optuna.db "
                              "or postgresql://user:password@host:5432/optuna")
    return with_available_driver(url)


def with_available_driver(url: str) -> str:
    """SQLAlchemy 2.1 reads a bare postgresql:// as psycopg (3); use psycopg2 when only that is installed."""
    scheme, sep, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres"):
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql+psycopg2{sep}{rest}"
    return url


def redact(url: str) -> str:
    """The URL without its password, for logs and MLflow tags."""
    return redact_uri(url)


class StaleTrialHandler:
    """Called for each trial failed for a stale heartbeat: re-queue it, then tell `on_stale` (MLflow)."""

    def __init__(self, max_retry: int):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        self.on_stale: Callable[[optuna.Study, FrozenTrial], None] | None = None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        log.warning("trial %d stopped sending heartbeats (its worker died?): marked failed and re-queued",
                    trial.number)
        self.requeue(study, trial)
        if self.on_stale is not None:
            self.on_stale(study, trial)

    def requeue(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """A WAITING copy of `trial` (same parameters), unless it was retried tune.max_retry times already."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._retry(study, trial)


def make_storage(url: str, section: TuneConfig, handler: StaleTrialHandler, attempts: int = 5) -> RDBStorage:
    """RDBStorage with heartbeats; retried because workers starting together race to create the tables."""
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(1, attempts + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=section.heartbeat_interval,
                                  grace_period=section.grace_period, heartbeat_stale_trial_callback=handler)
        except ImportError as err:
            raise UserFacingError(f"--storage {redact(url)}: the database driver is missing ({err}); "
                                  "for PostgreSQL install psycopg2-binary") from err
        except Exception as err:  # noqa: BLE001 - concurrent schema creation surfaces as assorted DB errors
            if attempt == attempts:
                raise UserFacingError(f"cannot open the Optuna storage {redact(url)}: {err}") from err
            log.info("storage not ready (%s); retrying", type(err).__name__)
            time.sleep(attempt)
    raise AssertionError("unreachable")


def make_sampler(cfg: SamplerConfig, worker: str = "") -> optuna.samplers.BaseSampler:
    """TPE seeded with tune.sampler.seed; a worker joining a study mixes its id in, or two workers
    started together would draw the very same random start-up trials."""
    seed = cfg.seed
    if worker:
        seed = int(hashlib.sha256(f"{cfg.seed}|{worker}".encode()).hexdigest()[:8], 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=cfg.n_startup_trials,
                                          multivariate=cfg.multivariate, constant_liar=True)


def make_pruner(cfg: PrunerConfig) -> optuna.pruners.BasePruner:
    if cfg.kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=cfg.n_startup_trials, n_warmup_steps=cfg.n_warmup_steps)
    if cfg.kind == "percentile":
        return optuna.pruners.PercentilePruner(cfg.percentile, n_startup_trials=cfg.n_startup_trials,
                                               n_warmup_steps=cfg.n_warmup_steps)
    if cfg.kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=cfg.min_resource, reduction_factor=cfg.reduction_factor)
    if cfg.kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=cfg.min_resource,
                                                      reduction_factor=cfg.reduction_factor)
    return optuna.pruners.NopPruner()


def open_study(storage: RDBStorage, name: str, section: TuneConfig) -> tuple[optuna.Study, bool]:
    """Create the study, or load it when it exists; returns it and whether this call created it.

    Creating with load_if_exists=False and falling back to load_study behaves like load_if_exists=True
    but tells the one creating worker apart (it creates the MLflow parent run and enqueues trials).
    """
    pruner = make_pruner(section.pruner)
    directions = section.directions()
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions,
                                    sampler=make_sampler(section.sampler), pruner=pruner, load_if_exists=False)
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner,
                                  sampler=make_sampler(section.sampler, worker=f"{socket.gethostname()}:{os.getpid()}"))
    have = [d.name.lower() for d in study.directions]
    if have != directions:
        raise UserFacingError(f"study {name!r} exists with direction(s) {have}, but this config asks for "
                              f"{directions}; use another --study name")
    return study, False


def count_states(study: optuna.Study) -> Counter:
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def fail_stale_trials(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
