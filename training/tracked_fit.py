"""The nested "model" run both training drivers open (`training.train`, `training.streaming.run`)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
import numpy as np
import torch
from lightning.pytorch.loggers import MLFlowLogger

from models.network import SessionSignalsModel
from training.config import TrainConfig
from training.config_io import flatten, to_dict
from training.fitting import Prepared, checkpoint_dir, fit


@contextmanager
def fitted_model_run(cfg: TrainConfig, p: Prepared, log_popularity: np.ndarray, uri: str, dataset: str,
                     callbacks: list | None) -> Iterator[tuple[str, SessionSignalsModel, float]]:
    """Open the "model" run (the config as params, Lightning logging into it), fit, and yield
    (run id, the best model on the CPU in eval mode, its validation score) with the run still open for
    the test metrics and the bundle."""
    with mlflow.start_run(run_name="model", nested=True) as run:
        run_id = run.info.run_id
        mlflow.set_tags({"method": "model", "encoder": cfg.model.encoder, "dataset": dataset})
        mlflow.log_params(flatten(to_dict(cfg)))
        logger = MLFlowLogger(experiment_name=cfg.tracking.experiment, tracking_uri=uri, run_id=run_id)
        module, best_val = fit(cfg, p, torch.from_numpy(log_popularity), logger, checkpoint_dir(cfg, run_id), callbacks)
        yield run_id, module.model.cpu().eval(), best_val
