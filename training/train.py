"""`train(cfg) -> metrics`: the one training driver.

data (in memory or streamed, `training.training_data.prepare`) -> Lightning fit -> test metrics beside
baselines -> MLflow (a parent run, a nested "model" run with the per-epoch curves and the bundle, one
nested run per baseline) -> registry.
"""
from __future__ import annotations

import logging

import lightning as L
import mlflow
import numpy as np

from events.config_io import loggable
from events.errors import UserFacingError
from training import resume as resuming
from training import tracking
from training.checkpoints import checkpoint_dir, drop_resume_points
from training.config import TrainRunConfig
from training.intervals import warn_if_too_small
from training.final_fit import fit_final
from training.lightning_fit import is_global_rank_zero
from training.list_tables import list_arrays
from training.training_data import TrainingData, prepare

log = logging.getLogger(__name__)


def train(cfg: TrainRunConfig, callbacks: list | None = None, parent_run_id: str | None = None,
          resume: str = resuming.AUTO) -> dict:
    """Train, evaluate beside baselines, track and register; returns metrics per method and the registration.

    `resume`: AUTO continues the killed or failed run of this config and data from its last checkpoint
    (`training.resume`), NEVER starts a new run, a run id continues that run. A nested training (a tuning
    trial, `parent_run_id`) is never continued automatically: the study retries its trials.

    Under DDP every process runs this function; only rank 0 tracks, evaluates and registers.
    """
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    multi_process = cfg.train.devices * cfg.train.num_nodes > 1
    if multi_process and resume not in (resuming.AUTO, resuming.NEVER):
        raise UserFacingError("--resume: only a single-process training resumes (the other DDP ranks cannot "
                              "know which checkpoint rank 0 chose)")
    if multi_process or parent_run_id is not None:
        resume = resuming.NEVER
    data = prepare(cfg)
    if not is_global_rank_zero():
        fit_final(cfg, data, logger=False, run_id=None, callbacks=callbacks)
        return {}
    uri = tracking.setup(cfg.tracking)
    source, dates = data.source, data.dates
    key = source.dataset_key(dates)
    rkey = resuming.resume_key(cfg, key)
    previous = resuming.run_to_resume(cfg, mlflow.get_experiment_by_name(cfg.tracking.experiment).experiment_id,
                                      rkey, resume)
    if previous:
        log.info("continuing MLflow run %s (%s) of this config and data", previous.parent_run_id, previous.status)
        resuming.drop_evaluation_runs(previous.parent_run_id, previous.model_run_id)
        opened = {"run_id": previous.parent_run_id}
    else:
        opened = {"run_name": f"train-{source.name}", "parent_run_id": parent_run_id, "nested": parent_run_id is not None}
    with mlflow.start_run(**opened) as parent:
        if not previous:  # a resumed run has them, and MLflow refuses to change a param
            mlflow.log_params(loggable(cfg))
            tracking.log_lineage(source, dates, data.lineage_counts())
        mlflow.set_tags({"dataset": source.name, "dataset_key": key, "role": "parent", "data_path": data.kind,
                         **({resuming.RESUME_KEY_TAG: rkey} if parent_run_id is None else {}),
                         **({"resumed_after": previous.status} if previous else {}), **tracking.process_tags()})
        with mlflow.start_run(**({"run_id": previous.model_run_id} if previous else {"run_name": "model"}),
                              nested=True) as run:
            run_id = run.info.run_id
            mlflow.set_tags({"method": "model", "encoder": cfg.model.encoder, "dataset": source.name,
                             **tracking.process_tags()})
            if not previous:
                mlflow.log_params(loggable(cfg))
            logger = tracking.RunLogger(cfg.tracking.experiment, uri, run_id, resumed=previous is not None)
            module, best_val, data = fit_final(cfg, data, logger, run_id, callbacks, resume=previous is not None)
            log_popularity = data.log_popularity()
            model = module.model.cpu().eval()
            log.info("evaluating the model on the test split")
            model_metrics = data.evaluate(model)
            mlflow.log_metrics({f"test_{k}": v for k, v in model_metrics.items()})
            tracking.log_bundle(model, data.encoder, bundle_meta(data, cfg, log_popularity, model_metrics, dates, key),
                                list_arrays(data.encoder_window_events(), data.encoder, model))
        results = {"model": model_metrics, **data.compare()}
        table = data.log_to_parent()
        small = size_warnings(data, model_metrics)
        if small:
            mlflow.set_tag("small_sample_warnings", " | ".join(small))
            table += "\n\nwarning: " + "\nwarning: ".join(small)
        registration = tracking.register_if_enabled(cfg.tracking, run_id, key, model_metrics)
    drop_resume_points(checkpoint_dir(cfg, run_id))  # the run finished: nothing will resume it
    print(table)
    return {"metrics": results, "registration": registration, "best_val": best_val,
            "parent_run_id": parent.info.run_id, "model_run_id": run_id, "tracking_uri": uri}


def size_warnings(data: TrainingData, test_metrics: dict[str, float]) -> list[str]:
    """Tasks whose validation or test split holds too few points to rank methods (each also logged)."""
    found = [warn_if_too_small("validation", task, n, positives)
             for task, (n, positives) in data.validation_sizes().items() if n]
    for task in ("intent", "churn", "next"):
        n = int(test_metrics.get(f"{task}_n", 0))
        if n:
            rate = test_metrics.get(f"{task}_positive_rate")
            found.append(warn_if_too_small("test", task, n, None if task == "next" else int(round(n * rate))))
    return [w for w in found if w]


def bundle_meta(data: TrainingData, cfg: TrainRunConfig, log_popularity: np.ndarray, metrics: dict[str, float],
                dates, dataset_key: str) -> dict:
    """What serving needs beside the weights: base rates and priors for empty histories, and provenance
    (the run's split and dataset key, also after a refit: the test points are the same)."""
    return {
        **data.base_rates(),
        "churn_horizon_days": cfg.labels.churn_horizon_days,
        "popularity_log_prob": log_popularity.tolist(),
        **data.priors(),
        "dataset": data.source.name,
        "dataset_key": dataset_key,
        "split": dates.to_dict(),
        "test_metrics": metrics,
    }
