"""One trial: sample a config from the search space, train it with train() under the trial's MLflow
run (baselines off, no registration), prune at validation epochs, return the tuned metric(s)."""
from __future__ import annotations

import contextlib
import io
import logging
import math
import shutil
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from training.config import TrainRunConfig
from training.lightning_fit import monitor_mode
from training.train import train
from training.tuning.config import ParamSpec, TuneRunConfig, apply_params
from training.tuning.trials import ERROR_ATTR, EpochRecorder, StudyTracker

log = logging.getLogger(__name__)

QUIET_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "training", "mlflow", "models")


def suggest(trial: optuna.Trial, space: dict[str, ParamSpec]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if spec.type == "categorical":
            params[name] = trial.suggest_categorical(name, spec.choices)
        elif spec.type == "int":
            params[name] = trial.suggest_int(name, int(spec.low), int(spec.high), step=int(spec.step or 1),
                                             log=spec.log)
        else:
            params[name] = trial.suggest_float(name, spec.low, spec.high, step=spec.step, log=spec.log)
    return params


def trial_config(base: TrainRunConfig, params: dict[str, Any]) -> TrainRunConfig:
    """The base config with the trial's parameters; trials skip baselines, never register and print no
    progress bars (the retrain of the best config keeps the base config's settings)."""
    cfg = apply_params(base, params)
    cfg.baselines.enabled = False
    cfg.tracking.register = False
    cfg.train.progress_bar = False
    return cfg


class Objective:
    def __init__(self, cfg: TuneRunConfig, tracker: StudyTracker, verbose: bool = False):
        self.cfg, self.base, self.tracker, self.verbose = cfg, cfg.base(), tracker, verbose
        self.metrics = cfg.tune.metrics()
        self.prune = len(self.metrics) == 1 and cfg.tune.pruner.kind != "none"
        if len(self.metrics) > 1 and cfg.tune.pruner.kind != "none":
            log.warning("pruning is off: Optuna prunes single-objective studies only")
        self.current: optuna.Trial | None = None

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        self.current = trial
        params = suggest(trial, self.cfg.tune.search_space)
        run_id = self.tracker.start_trial(trial, params, retry_of=retried_from(trial))
        recorder = EpochRecorder(self.tracker.client, run_id, trial.number, self.metrics[0])
        callbacks: list = [recorder]
        if self.prune:
            from optuna_integration import PyTorchLightningPruningCallback

            callbacks.append(PyTorchLightningPruningCallback(trial, monitor=self.metrics[0]))
        cfg = self.base
        try:
            cfg = trial_config(self.base, params)
            with self._quiet():
                result = train(cfg, callbacks=callbacks, parent_run_id=run_id)
            values = recorder.values_at_best(cfg.train.monitor, monitor_mode(cfg.train.monitor), self.metrics)
            if len(self.metrics) == 1 and self.metrics[0] == cfg.train.monitor:
                values = [result["best_val"]]  # the checkpoint's score: the model that was kept
            bad = [m for m, v in zip(self.metrics, values) if not math.isfinite(v)]
            if bad:
                raise ValueError(f"{', '.join(bad)} is not finite")
        except optuna.TrialPruned:
            raise
        except Exception as err:
            trial.set_user_attr(ERROR_ATTR, f"{type(err).__name__}: {err}"[:2000])
            raise
        finally:
            trial.set_user_attr("epochs", len(recorder.history))
            if recorder.model_run_id:  # the trial's checkpoints: its bundle is in MLflow when it completed
                shutil.rmtree(Path(cfg.output_dir) / recorder.model_run_id, ignore_errors=True)
        return values[0] if len(values) == 1 else values

    @contextlib.contextmanager
    def _quiet(self):
        """Per-trial training chatter (Lightning banners, the comparison table) off unless --verbose."""
        if self.verbose:
            yield
            return
        own = logging.getLogger("training.tuning").getEffectiveLevel()  # epoch lines stay
        levels = {name: logging.getLogger(name).level for name in (*QUIET_LOGGERS, "training.tuning")}
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("training.tuning").setLevel(own)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def retried_from(trial: optuna.Trial) -> int | None:
    """The original number of a trial re-queued after its worker died (RetryHeartbeatStaleTrialCallback)."""
    for t in trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.number == trial.number:
            return t.system_attrs.get("failed_trial")
    return None
