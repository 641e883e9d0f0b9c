"""MLflow: where runs go, how the bundle is registered, and the champion rule.

Champion rule (also in the README): every newly registered version gets the alias `challenger`. It
takes `champion` when there is no champion yet, or when the champion was evaluated on the same
dataset and split (same `dataset_key`) and the new version is better on the mean relative change of
the primary metrics they share while losing no more than 1% (relative) on any one of them. A champion
from another dataset is never replaced automatically (its numbers are not comparable): use
`tracking.promote=always` to force it.
"""
from __future__ import annotations

import logging
import os
import socket
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import psutil
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from mlflow import MlflowClient

from events.source import DatasetSource
from models.bundle import save_bundle
from registry import BUNDLE_ARTIFACT, CHALLENGER, CHAMPION, resolve_uri, use_experiment
from registry.logged_model import log_signals_model
from training.config import TrackingConfig
from training.labels import SplitDates
from training.metrics import PRIMARY_METRICS

log = logging.getLogger(__name__)

MAX_RELATIVE_DROP = 0.01
PROCESS_TAG = "process"  # host:pid:start time of the process that runs the run
# The MLflow UI opens a "custom model development" experiment on its runs table (not the GenAI overview).
EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"


def setup(cfg: TrackingConfig) -> str:
    """Point MLflow at the store and experiment; artifacts of the embedded store stay under mlruns/."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = resolve_uri(cfg.uri)
    experiment = use_experiment(uri, cfg.experiment, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND})
    if EXPERIMENT_KIND_TAG not in experiment.tags:  # an experiment made before the tag existed
        mlflow.set_experiment_tag(EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    end_runs_of_dead_processes(experiment.experiment_id)
    return uri


def process_tags() -> dict[str, str]:
    """Who runs this run: a later run on the same host can then tell that its process died."""
    me = psutil.Process()
    return {PROCESS_TAG: f"{socket.gethostname()}:{me.pid}:{me.create_time():.0f}"}


def end_runs_of_dead_processes(experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs whose process on this host is gone (kill -9, a lost machine's power):
    a run must never stay RUNNING forever. Runs of other hosts are left to those hosts."""
    client = MlflowClient()
    host = socket.gethostname()
    ended = []
    running = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=5000)
    for run in running:
        owner = run.data.tags.get(PROCESS_TAG, "")
        run_host, _, rest = owner.partition(":")
        pid, _, started = rest.partition(":")
        if run_host != host or not pid.isdigit():
            continue
        try:
            alive = f"{psutil.Process(int(pid)).create_time():.0f}" == started
        except psutil.NoSuchProcess:
            alive = False
        if not alive:
            client.set_tag(run.info.run_id, "ended_by", "a later run found its process gone")
            client.set_terminated(run.info.run_id, status="KILLED")
            ended.append(run.info.run_id)
    # Runs that name no process (a baseline's evaluation run) belong to their parent's: killed with it.
    for run in running:
        parent = run.data.tags.get("mlflow.parentRunId")
        if PROCESS_TAG not in run.data.tags and parent and (
                parent in ended or client.get_run(parent).info.status == "KILLED"):
            client.set_tag(run.info.run_id, "ended_by", "its parent run's process is gone")
            client.set_terminated(run.info.run_id, status="KILLED")
            ended.append(run.info.run_id)
    if ended:
        log.warning("marked %d run(s) KILLED: their process on this host is gone (%s)", len(ended), ", ".join(ended))
    return ended


class RunLogger(MLFlowLogger):
    """Lightning's MLflow logger on a run that the driver opens and ends (`training.train`).

    On a resumed run, what the killed process already logged is not logged again: its metrics up to the
    step each reached (the resumed epochs recompute the same values: every epoch's randomness comes from
    (seed, epoch)), and its hyperparameters. Lightning would otherwise also end the run FINISHED when a fit
    ends, with the refit, evaluation and registration still to come."""

    def __init__(self, experiment_name: str, tracking_uri: str, run_id: str, resumed: bool):
        super().__init__(experiment_name=experiment_name, tracking_uri=tracking_uri, run_id=run_id)
        self.resumed = resumed
        self.logged_up_to: dict[str, int] = {}
        if resumed:
            client = MlflowClient(tracking_uri)
            for key in client.get_run(run_id).data.metrics:
                self.logged_up_to[key] = max(m.step for m in client.get_metric_history(run_id, key))

    @rank_zero_only
    def log_hyperparams(self, params) -> None:
        if not self.resumed:
            super().log_hyperparams(params)

    @rank_zero_only
    def log_metrics(self, metrics, step: int | None = None) -> None:
        fresh = {k: v for k, v in metrics.items() if (step or 0) > self.logged_up_to.get(k, -1)}
        if fresh:
            super().log_metrics(fresh, step)

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        pass


def log_lineage(source: DatasetSource, dates: SplitDates, counts: dict[str, int]) -> None:
    """Dataset, file hash, split dates and row counts, through mlflow.log_input and params."""
    summary = pd.DataFrame([{**counts, **dates.to_dict(), "sha256": source.sha256}])
    dataset = mlflow.data.from_pandas(summary, source=str(source.path.resolve()), name=source.name,
                                      digest=source.sha256[:16])
    mlflow.log_input(dataset, context="training")
    mlflow.log_params({"lineage.path": str(source.path), "lineage.sha256": source.sha256,
                       **{f"lineage.{k}": v for k, v in {**counts, **dates.to_dict()}.items()}})


def log_bundle(model, encoder, meta: dict, arrays: dict | None = None) -> None:
    """Save the bundle (weights, config, vocabularies, `meta`, the lists' `arrays`) as the active run's
    artifact, where `register` points the model version."""
    with tempfile.TemporaryDirectory() as tmp:
        save_bundle(Path(tmp) / "bundle", model, encoder, meta, arrays)
        mlflow.log_artifacts(str(Path(tmp) / "bundle"), BUNDLE_ARTIFACT)


def register_if_enabled(cfg: TrackingConfig, run_id: str, dataset_key: str, metrics: dict[str, float]) -> dict | None:
    """`register` when `tracking.register` is on; what happened is tagged on the active (parent) run."""
    if not cfg.register:
        return None
    registration = register(run_id, cfg.model_name, dataset_key, metrics, cfg.promote)
    mlflow.set_tags({f"registered_{k}": str(v) for k, v in registration.items()})
    return registration


def register(run_id: str, model_name: str, dataset_key: str, metrics: dict[str, float], promote: str) -> dict:
    """Register the run's bundle as a pyfunc model, alias it challenger and apply the champion rule; returns what
    happened."""
    client = MlflowClient()
    try:
        client.get_registered_model(model_name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(model_name, description="session-signals multi-task sequence model")
    logged = log_registered_form(run_id, model_name)
    tags = {"dataset_key": dataset_key, **{f"metric.{k}": f"{metrics[k]:.6f}" for k in PRIMARY_METRICS if k in metrics}}
    version = client.create_model_version(model_name, source=logged.model_uri, run_id=run_id, tags=tags,
                                          model_id=logged.model_id)
    client.set_registered_model_alias(model_name, CHALLENGER, version.version)
    promoted, reason = decide_promotion(client, model_name, dataset_key, metrics, promote)
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, version.version)
    client.set_model_version_tag(model_name, version.version, "promotion", reason)
    log.info("registered %s version %s as %s; %s", model_name, version.version,
             "champion" if promoted else "challenger", reason)
    return {"model_name": model_name, "version": int(version.version), "champion": promoted, "reason": reason}


def log_registered_form(run_id: str, model_name: str):
    """The run's bundle logged beside the run as the pyfunc model that the registered version is
    (registry/logged_model.py): `mlflow.pyfunc.load_model("models:/NAME@champion")` loads it, serving and
    `signals score` take its bundle files. Returns MLflow's ModelInfo."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # quiet logs: registration says it all
    with tempfile.TemporaryDirectory() as tmp:
        bundle = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=BUNDLE_ARTIFACT, dst_path=tmp)
        return log_signals_model(Path(bundle), run_id, {"name": model_name, "version": None, "run_id": run_id})


def decide_promotion(client: MlflowClient, model_name: str, dataset_key: str, metrics: dict[str, float],
                     promote: str) -> tuple[bool, str]:
    if promote == "always":
        return True, "promoted: tracking.promote=always"
    if promote == "never":
        return False, "not promoted: tracking.promote=never"
    try:
        champion = client.get_model_version_by_alias(model_name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return True, "promoted: there was no champion"
    if champion.tags.get("dataset_key") != dataset_key:
        return False, f"not promoted: champion v{champion.version} was evaluated on another dataset/split"
    return compare(metrics, {k.removeprefix("metric."): float(v) for k, v in champion.tags.items()
                             if k.startswith("metric.")}, champion.version)


def compare(new: dict[str, float], old: dict[str, float], old_version: str) -> tuple[bool, str]:
    shared = [k for k in PRIMARY_METRICS if k in new and k in old and old[k] > 0]
    if not shared:
        return False, f"not promoted: no primary metric shared with champion v{old_version}"
    changes = {k: (new[k] - old[k]) / old[k] for k in shared}
    mean_change = sum(changes.values()) / len(changes)
    worst = min(changes, key=changes.get)
    summary = ", ".join(f"{k} {v:+.1%}" for k, v in changes.items())
    if mean_change > 0 and changes[worst] >= -MAX_RELATIVE_DROP:
        return True, f"promoted over v{old_version}: {summary}"
    return False, f"not promoted over v{old_version}: {summary}"
