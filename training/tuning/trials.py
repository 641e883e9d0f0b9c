"""MLflow side of a study: one parent run per study, one nested run per trial, states kept in step.

    tune-<study>                      parent: tune config, plots, best parameters, trials.csv
    ├── trial-0                       role=tune-trial: sampled params, val_* curves per epoch, value(s)
    │   └── train-<dataset>           what train() logs for that config (full params, lineage)
    │       └── model                 Lightning curves, test metrics, bundle
    ├── trial-1  (KILLED, optuna.state=PRUNED)
    └── train-<dataset>               retrain of the best config, with baselines; registered

A trial run's status is written from Optuna's final state of that trial, so the two cannot disagree:
COMPLETE -> FINISHED, PRUNED -> KILLED, FAIL -> FAILED, always with the tag `optuna.state`. A pruned trial
is KILLED, not FINISHED: `attributes.status = 'FINISHED'` keeps listing only fully trained trials, and the
tag tells it apart from a run someone stopped by hand. The runs train() opened below a pruned trial
(which the pruning exception ended as FAILED) are set to KILLED and tagged too, so nothing reads as a crash.

Several workers share the parent: the worker that creates the study creates the parent run and stores
its id in the study (`study.user_attrs["mlflow_parent_run_id"]`); the others read it from there.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

import lightning as L
import mlflow
import optuna
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from optuna.trial import FrozenTrial, TrialState

from training import tracking
from training.config import TrackingConfig

log = logging.getLogger(__name__)

PARENT_ATTR = "mlflow_parent_run_id"
RUN_ATTR = "mlflow_run_id"
ERROR_ATTR = "error"
STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}
ROLE_STUDY, ROLE_TRIAL = "tune-study", "tune-trial"
PARENT_WAIT_S = 20.0


def setup_tracking(cfg: TrackingConfig, attempts: int = 5) -> str:
    """tracking.setup, retried: workers starting together race to create the store and the experiment."""
    for attempt in range(1, attempts + 1):
        try:
            return tracking.setup(cfg)
        except Exception:  # noqa: BLE001 - the loser of the race sees a unique-constraint error
            if attempt == attempts:
                raise
            time.sleep(attempt)
    raise AssertionError("unreachable")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class StudyTracker:
    """Creates or finds the study's parent run, opens trial runs and closes them from Optuna's states."""

    def __init__(self, cfg: TrackingConfig, study: optuna.Study, created: bool, storage_label: str,
                 params: dict[str, Any], config_yaml: str):
        self.uri = setup_tracking(cfg)
        self.client = MlflowClient()
        self.experiment_id = mlflow.get_experiment_by_name(cfg.experiment).experiment_id
        self.study = study
        self.parent_run_id = self._parent(created, storage_label, params, config_yaml)

    # ----- the study's parent run
    def _parent(self, created: bool, storage_label: str, params: dict[str, Any], config_yaml: str) -> str:
        run_id = None if created else self._wait_for_parent()
        if run_id is not None:
            try:
                run = self.client.get_run(run_id)
                if run.info.lifecycle_stage == "active":
                    if run.info.status != "RUNNING":
                        self.client.update_run(run_id, status="RUNNING")
                    return run_id
            except mlflow.exceptions.MlflowException:
                pass
            log.warning("the study's MLflow parent run %s is not in %s; starting a new parent run", run_id, self.uri)
        run = self.client.create_run(self.experiment_id, run_name=f"tune-{self.study.study_name}", tags={
            "role": ROLE_STUDY, "optuna.study": self.study.study_name, "optuna.storage": storage_label,
            "optuna.directions": ",".join(d.name.lower() for d in self.study.directions)})
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=[Param(k, _param_value(v)) for k, v in params.items()])
        self.client.log_text(run_id, config_yaml, "tune_config.yaml")
        self.study.set_user_attr(PARENT_ATTR, run_id)
        return run_id

    def _wait_for_parent(self) -> str | None:
        """Another worker created the study: it stores the parent run id right away (before any trial)."""
        deadline = time.monotonic() + PARENT_WAIT_S
        while True:
            run_id = self.study.user_attrs.get(PARENT_ATTR)
            if run_id or time.monotonic() > deadline:
                return run_id
            if any(t.state != TrialState.WAITING for t in self.study.get_trials(deepcopy=False)):
                return None  # trials ran without a parent id: its creator died before storing one
            time.sleep(0.5)

    def log_progress(self, finished: int) -> None:
        """Best value so far on the parent, stepped by the number of finished trials: a live history."""
        try:
            best = self.study.best_trials if len(self.study.directions) > 1 else [self.study.best_trial]
        except ValueError:
            return
        if len(self.study.directions) == 1:
            self.client.log_metric(self.parent_run_id, "best_value", best[0].value, step=finished)
        self.client.set_tag(self.parent_run_id, "finished_trials", str(finished))

    def finish(self) -> None:
        self.client.set_terminated(self.parent_run_id, "FINISHED")

    # ----- trial runs
    def start_trial(self, trial: optuna.Trial, params: dict[str, Any], retry_of: int | None) -> str:
        tags = {MLFLOW_PARENT_RUN_ID: self.parent_run_id, "role": ROLE_TRIAL, "optuna.study": self.study.study_name,
                "optuna.trial_number": str(trial.number), "optuna.state": "RUNNING", "optuna.worker": worker_id()}
        if retry_of is not None:
            tags["optuna.retry_of"] = str(retry_of)
        run = self.client.create_run(self.experiment_id, run_name=f"trial-{trial.number}", tags=tags)
        run_id = run.info.run_id
        trial.set_user_attr(RUN_ATTR, run_id)  # first thing: a worker dying from here on leaves a findable run
        self.client.log_batch(run_id, params=[Param(k, _param_value(v)) for k, v in params.items()])
        return run_id

    def end_trial(self, trial: FrozenTrial, metrics: list[str], error: str | None = None) -> None:
        """Write Optuna's final state of `trial` onto its run and the runs train() opened below it."""
        run_id = trial.user_attrs.get(RUN_ATTR)
        if not run_id:
            return
        state = trial.state
        status = STATUS.get(state, "FAILED")
        tags = [RunTag("optuna.state", state.name)]
        error = error or trial.user_attrs.get(ERROR_ATTR)
        if error and state == TrialState.FAIL:
            tags.append(RunTag("optuna.error", str(error)[:4000]))
        values = []
        if state == TrialState.COMPLETE and trial.values:
            names = ["value"] if len(metrics) == 1 else [f"value_{m}" for m in metrics]
            values = [Metric(n, float(v), int(time.time() * 1000), 0) for n, v in zip(names, trial.values)]
        if state == TrialState.PRUNED and trial.intermediate_values:
            tags.append(RunTag("optuna.pruned_at_epoch", str(max(trial.intermediate_values))))
        self.client.log_batch(run_id, metrics=values, tags=tags)
        for rid in [run_id, *self._descendants(run_id)]:
            if rid != run_id:
                self.client.set_tag(rid, "optuna.state", state.name)
            if self.client.get_run(rid).info.status != status:
                self.client.set_terminated(rid, status)

    def on_stale(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """A trial failed for a stale heartbeat (its worker was killed): close its runs as FAILED."""
        run_id = trial.user_attrs.get(RUN_ATTR)
        if not run_id:
            return
        try:
            if self.client.get_run(run_id).data.tags.get("optuna.trial_number") != str(trial.number):
                return  # inherited by a retry that died before opening its own run: already closed
            for rid in [run_id, *self._descendants(run_id)]:
                self.client.set_tag(rid, "optuna.state", TrialState.FAIL.name)
                self.client.set_tag(rid, "optuna.error", "the worker stopped sending heartbeats (killed?); retried")
                if self.client.get_run(rid).info.status == "RUNNING":
                    self.client.set_terminated(rid, "FAILED")
        except mlflow.exceptions.MlflowException as err:
            log.warning("could not close the MLflow runs of stale trial %d: %s", trial.number, err)

    def _descendants(self, run_id: str) -> list[str]:
        found, todo = [], [run_id]
        while todo:
            rid = todo.pop()
            children = self.client.search_runs([self.experiment_id], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{rid}'")
            for child in children:
                found.append(child.info.run_id)
                todo.append(child.info.run_id)
        return found


class EpochRecorder(L.Callback):
    """Logs each validation epoch's val_* metrics on the trial run and keeps them for the objective."""

    def __init__(self, client: MlflowClient, run_id: str, trial_number: int, metric: str):
        self.client, self.run_id, self.trial_number, self.metric = client, run_id, trial_number, metric
        self.history: dict[int, dict[str, float]] = {}
        self.model_run_id: str | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.model_run_id = getattr(trainer.logger, "run_id", None)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        epoch = pl_module.current_epoch
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
        self.history[epoch] = values
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, epoch) for k, v in values.items()])
        if self.metric in values:
            log.info("trial %d epoch %d: %s=%.4f", self.trial_number, epoch, self.metric, values[self.metric])

    def values_at_best(self, monitor: str, mode: str, metrics: list[str]) -> list[float]:
        """The metrics at the epoch the checkpoint kept (best `monitor`, earliest on ties)."""
        scored = [(e, h[monitor]) for e, h in sorted(self.history.items()) if monitor in h]
        if not scored:
            raise RuntimeError(f"no validation epoch logged {monitor}")
        best = (max if mode == "max" else min)(scored, key=lambda eh: eh[1])[0]
        missing = [m for m in metrics if m not in self.history[best]]
        if missing:
            raise RuntimeError(f"validation did not log {', '.join(missing)} "
                               f"(logged: {', '.join(sorted(self.history[best]))})")
        return [self.history[best][m] for m in metrics]


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."
