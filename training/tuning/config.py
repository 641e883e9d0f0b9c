"""The typed config of a tuning run: the usual TrainRunConfig sections (the base config every trial
starts from) plus a `tune:` section (search space, objective(s), sampler, pruner, study, storage).

Search-space keys are dotted TrainRunConfig keys (`model.d_model`, `train.lr`, ...). They are checked
when the config is loaded: an unknown key, a bad type or a value the TrainRunConfig field would refuse
(e.g. `model.encoder: {choices: [gru, lstm]}`) is an error before any work starts.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from training.config import TrainRunConfig
from events.config_io import _set_dotted, from_dict, to_dict
from events.errors import UserFacingError



@dataclass
class ParamSpec:
    """One searched parameter: `float`/`int` draw from [low, high] (log-uniform with log: true;
    `step` for a grid), `categorical` from `choices`."""
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    def check(self, name: str) -> None:
        where = f"tune.search_space.{name}"
        if self.type == "categorical":
            if not self.choices:
                raise UserFacingError(f"{where}: a categorical parameter needs a non-empty `choices` list")
            bad = [c for c in self.choices if c is not None and not isinstance(c, (bool, int, float, str))]
            if bad:
                raise UserFacingError(f"{where}: choices must be numbers, strings or booleans, got {bad!r}")
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise UserFacingError(f"{where}: low/high/log/step do not apply to a categorical parameter")
            return
        if self.choices is not None:
            raise UserFacingError(f"{where}: `choices` only applies to type categorical")
        if self.low is None or self.high is None:
            raise UserFacingError(f"{where}: a {self.type} parameter needs `low` and `high`")
        if self.low > self.high:
            raise UserFacingError(f"{where}: low {self.low} is above high {self.high}")
        if self.log and self.low <= 0:
            raise UserFacingError(f"{where}: a log-scaled range needs low > 0")
        if self.log and self.step is not None:
            raise UserFacingError(f"{where}: `step` and `log: true` cannot be combined")
        if self.type == "int":
            for key in ("low", "high", "step"):
                value = getattr(self, key)
                if value is not None and float(value) != int(value):
                    raise UserFacingError(f"{where}: {key} must be a whole number for an int parameter")

    def values_to_check(self) -> list[Any]:
        """Values that must be acceptable to the TrainRunConfig field the parameter sets."""
        if self.type == "categorical":
            return list(self.choices or [])
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [float(self.low), float(self.high)]


@dataclass
class SamplerConfig:
    """The TPE sampler: seeded, so a study is reproducible on one worker."""
    seed: int = 42
    n_startup_trials: int = 5  # random trials before TPE starts modelling the space
    multivariate: bool = True  # model parameters jointly (encoder kind x width x depth interact)


@dataclass
class PrunerConfig:
    """Stops poor trials at a validation epoch (single-objective studies only)."""
    kind: Literal["median", "percentile", "hyperband", "successive_halving", "none"] = "median"
    n_startup_trials: int = 3  # median/percentile: finished trials before anything is pruned
    n_warmup_steps: int = 1  # median/percentile: validation epochs a trial always gets
    percentile: float = 25.0  # percentile: prune below this percentile of the other trials
    min_resource: int = 1  # hyperband/successive_halving: epochs before the first rung
    reduction_factor: int = 3  # hyperband/successive_halving


def default_search_space() -> dict[str, ParamSpec]:
    """What `signals tune` searches when the config file names no search space (= configs/tune-default.yaml)."""
    return {
        "model.encoder": ParamSpec("categorical", choices=["gru", "transformer"]),
        "model.d_model": ParamSpec("categorical", choices=[32, 64, 128]),
        "model.n_layers": ParamSpec("int", low=1, high=3),
        "model.dropout": ParamSpec("float", low=0.0, high=0.3),
        "model.max_len": ParamSpec("categorical", choices=[20, 50, 100]),
        "train.lr": ParamSpec("float", low=3e-4, high=1e-2, log=True),
        "train.lr_schedule": ParamSpec("categorical", choices=["constant", "cosine"]),
        "train.intent_weight": ParamSpec("float", low=0.5, high=2.0, log=True),
        "train.churn_weight": ParamSpec("float", low=0.5, high=2.0, log=True),
        "train.next_weight": ParamSpec("float", low=0.5, high=2.0, log=True),
        "train.weight_decay": ParamSpec("float", low=1e-6, high=1e-2, log=True),
        "model.side_features": ParamSpec("categorical", choices=[True, False]),
        "model.session_shape": ParamSpec("categorical", choices=[True, False]),
        "model.history_counts": ParamSpec("categorical", choices=[True, False]),
        "model.history_times": ParamSpec("categorical", choices=[True, False]),
        "model.churn_wide": ParamSpec("categorical", choices=[True, False]),
        "model.cooc_neighbours": ParamSpec("categorical", choices=[0, 16, 32]),
        "model.repeat": ParamSpec("categorical", choices=[True, False]),
        "model.history": ParamSpec("categorical", choices=[8, 49]),
    }


@dataclass
class TuneConfig:
    trials: int = 20  # finished (complete + pruned) trials the study should hold; workers stop there
    timeout: float | None = None  # seconds after which this worker starts no new trial
    study: str = ""  # "" = <dataset>-<hash of the search space, objective and base config>
    storage: str = ""  # Optuna RDB URL; "" = $OPTUNA_STORAGE or sqlite:///mlruns/optuna.db
    metric: str | list[str] = "val_score"  # one name, or a list for a multi-objective study
    direction: str | list[str] = ""  # maximize/minimize per metric; "" = minimize for *loss*, else maximize
    search_space: dict[str, ParamSpec] = field(default_factory=default_search_space)
    enqueue: list[dict[str, Any]] = field(default_factory=list)  # configs tried first, e.g. the current one
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    heartbeat_interval: int = 10  # seconds between a running trial's heartbeats in the storage
    grace_period: int = 60  # a trial without a heartbeat for this long is failed and retried
    max_retry: int = 2  # retries of a trial whose worker died
    retrain: bool = True  # retrain the best config with baselines and register it
    top: int = 5  # rows of the best-trials table

    def __post_init__(self) -> None:
        space = {}
        if not isinstance(self.search_space, dict):
            raise UserFacingError("tune.search_space: expected a mapping of dotted config keys to ranges")
        for name, spec in self.search_space.items():
            if isinstance(spec, dict):
                spec = from_dict(ParamSpec, spec, prefix=f"tune.search_space.{name}.")
            elif not isinstance(spec, ParamSpec):
                raise UserFacingError(f"tune.search_space.{name}: expected a mapping like "
                                      "{type: float, low: 0.001, high: 0.1, log: true}")
            spec.check(name)
            check_train_key(name, spec.values_to_check())
            space[name] = spec
        if not space:
            raise UserFacingError("tune.search_space is empty: name at least one parameter to search")
        self.search_space = space
        for i, point in enumerate(self.enqueue):
            if not isinstance(point, dict):
                raise UserFacingError(f"tune.enqueue[{i}]: expected a mapping of dotted keys to values")
            unknown = sorted(set(point) - set(space))
            if unknown:
                raise UserFacingError(f"tune.enqueue[{i}]: {', '.join(unknown)} not in tune.search_space")
            for key, value in point.items():
                check_train_key(key, [value])
        self.metrics()  # validates metric/direction
        self.directions()
        for key in ("trials", "heartbeat_interval", "grace_period", "top"):
            if getattr(self, key) < 1:
                raise UserFacingError(f"tune.{key} must be at least 1")
        if self.grace_period <= self.heartbeat_interval:
            raise UserFacingError("tune.grace_period must be longer than tune.heartbeat_interval")

    def metrics(self) -> list[str]:
        names = [self.metric] if isinstance(self.metric, str) else list(self.metric)
        if not names or len(set(names)) != len(names):
            raise UserFacingError(f"tune.metric: expected one name or a list of distinct names, got {self.metric!r}")
        bad = [m for m in names if not m.startswith("val_")]
        if bad:
            raise UserFacingError(f"tune.metric: {', '.join(bad)}: tuning optimises validation metrics "
                                  "(val_score, val_loss, val_intent_pr_auc, val_churn_pr_auc, val_next_mrr_at_20)")
        return names

    def directions(self) -> list[str]:
        names = self.metrics()
        if self.direction in ("", None, []):
            return ["minimize" if "loss" in m else "maximize" for m in names]
        given = [self.direction] if isinstance(self.direction, str) else list(self.direction)
        if len(given) == 1 and len(names) > 1:
            given = given * len(names)
        if len(given) != len(names) or any(d not in ("maximize", "minimize") for d in given):
            raise UserFacingError(f"tune.direction: expected maximize/minimize for each of {names}, got {self.direction!r}")
        return given


@dataclass
class TuneRunConfig(TrainRunConfig):
    """TrainRunConfig sections (the base every trial starts from) plus the `tune:` section."""
    tune: TuneConfig = field(default_factory=TuneConfig)

    def base(self) -> TrainRunConfig:
        """The TrainRunConfig part, with the monitor set to the tuned metric for a single objective."""
        cfg = TrainRunConfig(**{f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(TrainRunConfig)})
        metrics = self.tune.metrics()
        if len(metrics) == 1:
            cfg.train.monitor = metrics[0]  # early stopping and the checkpoint follow what is tuned
        return cfg

    def check(self) -> None:
        """Cross-section rules (called after CLI flags were applied)."""
        from training.lightning_fit import monitor_mode

        metrics, directions = self.tune.metrics(), self.tune.directions()
        if len(metrics) == 1:
            wanted = "minimize" if monitor_mode(metrics[0]) == "min" else "maximize"
            if directions[0] != wanted:
                raise UserFacingError(f"tune.direction: {metrics[0]} is {wanted}d by early stopping and the "
                                      f"checkpoint (train.monitor), so the study must {wanted} it too")
        if self.tune.trials < 1:
            raise UserFacingError("--trials must be at least 1")
        if self.tune.timeout is not None and self.tune.timeout <= 0:
            raise UserFacingError("--timeout must be positive")


def check_train_key(name: str, values: list[Any]) -> None:
    """`name` must be a dotted TrainRunConfig leaf key and accept every one of `values`."""
    node: Any = TrainRunConfig
    parts = name.split(".")
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(node):
            raise UserFacingError(f"tune.search_space: {name!r}: {'.'.join(parts[:i])} is a value, not a section")
        fields = {f.name: f for f in dataclasses.fields(node)}
        if part not in fields:
            raise UserFacingError(f"tune.search_space: unknown config key {name!r}; "
                                  f"known in {'.'.join(parts[:i]) or 'the top level'}: {', '.join(sorted(fields))}")
        node = _field_type(node, part)
    if dataclasses.is_dataclass(node):
        raise UserFacingError(f"tune.search_space: {name!r} is a section; name one of its keys")
    if parts[0] == "tracking":
        raise UserFacingError(f"tune.search_space: {name!r}: tracking settings are not tunable")
    for value in values:
        apply_params(TrainRunConfig(), {name: value})  # raises the TrainRunConfig field's own type error


def _field_type(cls: type, name: str) -> Any:
    import typing

    return typing.get_type_hints(cls)[name]


def apply_params(base: TrainRunConfig, params: dict[str, Any]) -> TrainRunConfig:
    """A copy of `base` with dotted `params` set, type-checked like a config file."""
    raw = to_dict(base)
    for key, value in params.items():
        _set_dotted(raw, key, value)
    return from_dict(TrainRunConfig, raw)


def dataset_label(cfg: TrainRunConfig) -> str:
    if cfg.data.name:
        return cfg.data.name
    if cfg.data.path:
        return Path(cfg.data.path).name or "data"
    return f"sim-{cfg.data.simulate_events}-seed{cfg.data.simulate_seed}"


# Settings that change what a trial computes: a different value means a different study.
_NOT_IN_STUDY_KEY = {"tracking", "output_dir"}
_TRAIN_NOT_IN_STUDY_KEY = {"progress_bar", "num_workers"}


def study_key(cfg: TuneRunConfig) -> str:
    """Hash of what defines the study: search space, objective, sampler, pruner and base config."""
    base = {k: v for k, v in to_dict(cfg.base()).items() if k not in _NOT_IN_STUDY_KEY}
    base["train"] = {k: v for k, v in base["train"].items() if k not in _TRAIN_NOT_IN_STUDY_KEY}
    t = cfg.tune
    spec = {"base": base, "space": {k: dataclasses.asdict(v) for k, v in sorted(t.search_space.items())},
            "metrics": t.metrics(), "directions": t.directions(), "sampler": dataclasses.asdict(t.sampler),
            "pruner": dataclasses.asdict(t.pruner)}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:8]


def default_study_name(cfg: TuneRunConfig) -> str:
    return f"{dataset_label(cfg)}-{study_key(cfg)}"
