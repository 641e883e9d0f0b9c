"""The final model of a run: early stopping on validation, then (with `train.refit`) a fresh model refitted
on train + validation for the chosen epoch count. Shared by `signals train` and the peers adapter."""
from __future__ import annotations

import logging

import torch

from training.checkpoints import checkpoint_dir
from training.config import TrainRunConfig
from training.lightning_fit import fit
from training.module import SignalsModule
from training.training_data import TrainingData

log = logging.getLogger(__name__)


def fit_final(cfg: TrainRunConfig, data: TrainingData, logger, run_id: str | None,
              callbacks: list | None, resume: bool = False) -> tuple[SignalsModule, float, TrainingData]:
    """Fit with early stopping on validation; with `train.refit`, then refit a fresh model on train +
    validation for the chosen number of epochs. Returns the final module, the best validation score and
    the data the final model was fitted on (whose encoder and priors go in the bundle). With `resume`,
    each of the two fits continues from its last checkpoint (a finished one only restores its result)."""
    module, best_val = fit(cfg, data, torch.from_numpy(data.log_popularity()), logger, checkpoint_dir(cfg, run_id),
                           callbacks, resume=resume)
    if not cfg.train.refit:
        return module, best_val, data
    epochs = module.epochs_trained
    log.info("refitting on train + validation for %d epochs (the best on validation)", epochs)
    merged = data.for_refit()
    if logger:
        import mlflow  # only when tracked: the peers adapter and GPU benchmarks run without MLflow

        mlflow.log_params({"refit.epochs": epochs, "refit.catalogue": len(merged.encoder.products)})
    module, _ = fit(cfg, merged, torch.from_numpy(merged.log_popularity()), False, checkpoint_dir(cfg, run_id),
                    callbacks=None, epochs=epochs, resume=resume)
    return module, best_val, merged
