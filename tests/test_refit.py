"""Refit on train + validation (`train.refit`): validation labels train the final model, the test split
is untouched, and products first seen in the validation window become rankable."""
import numpy as np
import pytest
import torch

from events.config_io import load_config
from events.errors import UserFacingError
from tests.factories import random_events, tiny_run_overrides, write_events
from training.config import TrainRunConfig
from training.in_memory import prepare_in_memory
from training.labels import TEST, TRAIN, VAL
from training.lightning_fit import fit
from training.training_data import prepare
from training.window_predictions import predict


def test_refit_data_merges_validation_into_training_and_leaves_test_alone(tmp_path):
    write_events(random_events(n_users=40, days=30), tmp_path)
    cfg = load_config(TrainRunConfig, None, [*tiny_run_overrides(tmp_path), "train.progress_bar=false",
                                             "model.cooc_neighbours=4"])
    data = prepare_in_memory(cfg)
    merged = data.for_refit()
    labels = merged.labels
    assert not (labels.intent_split == VAL).any() and not (labels.next_split == VAL).any()
    assert not (labels.churn["split"] == VAL).any()
    assert (labels.intent_split == TEST).sum() == (data.labels.intent_split == TEST).sum()  # test untouched
    assert (labels.intent_split == TRAIN).sum() > (data.labels.intent_split == TRAIN).sum()
    assert labels.dates.input_end(TRAIN) == data.dates.test_start
    assert len(merged.encoder.products) >= len(data.encoder.products)  # validation products join the vocabulary

    module, score = fit(cfg, merged, torch.from_numpy(merged.log_popularity()), False, tmp_path / "ckpt", None,
                        epochs=1)
    assert module.epochs_trained == 1 and np.isnan(score)  # nothing was selected on validation
    assert module.model.cooc_count.sum() > 0  # transition evidence filled from the merged training pairs
    pred = predict(module.model.eval(), merged.datasets[TEST])
    assert np.isfinite(pred.intent.to_numpy()).all() and len(pred.next_rank)


def test_streaming_data_with_a_refit_stops_before_any_work(tmp_path):
    """Streamed data cannot refit: the run says so at once, naming both keys, before reading the data."""
    cfg = load_config(TrainRunConfig, None, [f"data.path={tmp_path / 'no-such-folder'}", "data.streaming=true",
                                             "train.refit=true"])
    with pytest.raises(UserFacingError, match=r"train\.refit.*data\.streaming=true"):
        prepare(cfg)
