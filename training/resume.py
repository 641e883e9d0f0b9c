"""Which MLflow run a `signals train` continues, if any.

A training's parent run is tagged with its resume key (the config, less the settings that change nothing
it learns, and the data's dataset key). Run again, `signals train` continues the latest run of that key
when it was killed or failed and left a checkpoint (`training.checkpoints`): the same
parent and model runs, reopened. A finished run is never continued: a rerun of it is a new run.
`--resume RUN_ID` names the run instead, and says why when it cannot be continued.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient

from events.config_io import loggable
from events.errors import UserFacingError
from training.checkpoints import LAST, checkpoint_dir
from training.config import TrainRunConfig

log = logging.getLogger(__name__)

AUTO, NEVER = "auto", "never"  # `train(resume=...)`: these, or the id of the run to continue
RESUME_KEY_TAG = "resume_key"
CONTINUABLE = ("KILLED", "FAILED")
# Settings that change nothing the model learns: a rerun that differs only in these continues the run.
IGNORED = ("train.progress_bar", "train.threads", "tracking.")


@dataclass
class Resumable:
    parent_run_id: str
    model_run_id: str
    status: str  # what the run was before it was reopened


def resume_key(cfg: TrainRunConfig, dataset_key: str) -> str:
    params = {k: v for k, v in loggable(cfg).items() if not k.startswith(IGNORED)}
    return hashlib.sha256(json.dumps([params, dataset_key], sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_to_resume(cfg: TrainRunConfig, experiment_id: str, key: str, resume: str) -> Resumable | None:
    """The run this training continues: None for a new run. `resume`: AUTO, NEVER or a run id."""
    if resume == NEVER:
        return None
    if resume != AUTO:
        return named_run(cfg, resume, key)
    client = MlflowClient()
    latest = client.search_runs([experiment_id], f"tags.{RESUME_KEY_TAG} = '{key}'",
                                order_by=["attributes.start_time DESC"], max_results=1)
    if not latest or latest[0].info.status not in CONTINUABLE:
        return None
    parent = latest[0]
    model = model_run(client, parent.info.run_id)
    if model is None or not last_checkpoint(cfg, model).is_file():
        log.info("run %s of this config and data was %s before its first checkpoint: starting a new run",
                 parent.info.run_id, parent.info.status)
        return None
    return Resumable(parent.info.run_id, model, parent.info.status)


def named_run(cfg: TrainRunConfig, run_id: str, key: str) -> Resumable:
    """`--resume RUN_ID` (the parent run, or its model run): a clear error when it cannot be continued."""
    client = MlflowClient()
    try:
        run = client.get_run(run_id)
    except Exception as exc:  # MlflowException: not found, or not an id at all
        raise UserFacingError(f"--resume {run_id}: no such run in {client.tracking_uri} ({exc})") from exc
    parent_id = run.data.tags.get("mlflow.parentRunId") if run.data.tags.get("method") == "model" else None
    parent = client.get_run(parent_id) if parent_id else run
    if RESUME_KEY_TAG not in parent.data.tags:
        raise UserFacingError(f"--resume {run_id}: not the run of a `signals train` (no {RESUME_KEY_TAG} tag)")
    status = parent.info.status
    if status not in CONTINUABLE:
        why = "finished (a rerun without --resume starts a new run)" if status == "FINISHED" else \
            f"{status} (its process is alive, or on another host)"
        raise UserFacingError(f"--resume {run_id}: run {parent.info.run_id} is {why}")
    if parent.data.tags[RESUME_KEY_TAG] != key:
        raise UserFacingError(f"--resume {run_id}: this config or data is not the run's; "
                              f"{differences(cfg, parent.data.params) or 'the data or its split differ'}")
    model = model_run(client, parent.info.run_id)
    checkpoint = last_checkpoint(cfg, model) if model else None
    if checkpoint is None or not checkpoint.is_file():
        raise UserFacingError(f"--resume {run_id}: no checkpoint at {checkpoint or checkpoint_dir(cfg, '<model run>')} "
                              "(the run ended before its first epoch did); run without --resume for a new run")
    return Resumable(parent.info.run_id, model, status)


def differences(cfg: TrainRunConfig, params: dict[str, str]) -> str:
    """'key: run value -> this value' for the config keys (not IGNORED) where this config and a run's params differ."""
    now = {k: str(v) for k, v in loggable(cfg).items() if not k.startswith(IGNORED)}
    changed = [f"{k}: {params.get(k, '(unset)')} -> {v}" for k, v in sorted(now.items()) if params.get(k) != v]
    return "; ".join(changed)


def model_run(client: MlflowClient, parent_run_id: str) -> str | None:
    found = client.search_runs([client.get_run(parent_run_id).info.experiment_id],
                               f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.method = 'model'", max_results=1)
    return found[0].info.run_id if found else None


def last_checkpoint(cfg: TrainRunConfig, model_run_id: str) -> Path:
    return checkpoint_dir(cfg, model_run_id) / f"{LAST}.ckpt"


def drop_evaluation_runs(parent_run_id: str, model_run_id: str) -> None:
    """Delete the baseline and oracle runs a killed attempt left under the parent: the resumed run
    evaluates them again, and two sets of them side by side would be read as two methods each."""
    client = MlflowClient()
    children = client.search_runs([client.get_run(parent_run_id).info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=1000)
    stale = [r.info.run_id for r in children if r.info.run_id != model_run_id]
    for run_id in stale:
        client.delete_run(run_id)
    if stale:
        log.info("deleted %d evaluation run(s) of the interrupted attempt; they are evaluated again", len(stale))
