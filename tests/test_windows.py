"""Window batches: what the model sees and is scored on, checked window by window against the split's arrays."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.encoding import FEATURES
from tests.factories import random_events, write_events
from training.config import TrainRunConfig
from events.config_io import load_config
from training.training_data import prepare
from training.labels import TEST, TRAIN, VAL
from training.windows import IGNORE, collate, concat_batches


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    folder = write_events(random_events(n_users=80, days=40, n_products=60, seed=5), tmp_path_factory.mktemp("events"))
    cfg = load_config(TrainRunConfig, None, [f"data.path={folder}", "model.max_len=12", "split.val_days=10",
                                          "split.test_days=10", "labels.churn_lookback_days=10"])
    return prepare(cfg).datasets


@pytest.mark.parametrize("split", [TRAIN, VAL, TEST])
def test_gathered_batch_holds_each_window_padded_with_its_own_labels(datasets, split: int) -> None:
    ds = datasets[split]
    a, L = ds.a, ds.window
    indices = list(np.random.default_rng(split).permutation(len(ds))[:40])
    batch = collate(ds.__getitems__(indices))
    churn_seen = 0
    for b, i in enumerate(indices):
        start, end, score_from = (int(v) for v in ds.windows[i])
        n = end - start
        for name in FEATURES:
            assert batch[name][b, :n].tolist() == a.features[name][start:end].tolist()
            assert (batch[name][b, n:] == 0).all()  # right padding
        for name in ("intent", "next_product", "event_row"):
            expected = [int(v) if start + t >= score_from else IGNORE for t, v in enumerate(getattr(a, name)[start:end])]
            assert batch[name][b].tolist() == expected + [IGNORE] * (L - n)
        rows = [r for r in range(len(a.churn_row)) if score_from <= a.churn_row[r] < end]  # each scored once
        mine = batch["churn_batch"] == b
        assert batch["churn_pos"][mine].tolist() == [int(a.churn_row[r]) - start for r in rows]
        assert batch["churn_key"][mine].tolist() == [int(a.churn_key[r]) for r in rows]
        churn_seen += len(rows)
    assert churn_seen == len(batch["churn_pos"])
    flat = batch["next_product"].flatten()
    assert torch.equal(batch["next_index"], torch.nonzero(flat >= 2).squeeze(1))
    assert torch.equal(batch["intent_index"], torch.nonzero(batch["intent"].flatten() >= 0).squeeze(1))


def test_single_windows_stack_into_the_gathered_batch(datasets) -> None:
    ds = datasets[TRAIN]
    indices = [3, 0, 7, 7, 1]
    gathered = ds.__getitems__(indices)
    stacked = collate([ds[i] for i in indices])
    assert gathered.keys() == stacked.keys()
    for k in gathered:
        assert torch.equal(gathered[k], stacked[k]), k


def test_every_split_has_churn_examples_to_check(datasets) -> None:
    for ds in datasets.values():
        assert len(ds.a.churn_row) > 0


def test_batches_gathered_in_parts_join_into_the_whole(datasets) -> None:
    ds = datasets[VAL]
    indices = list(range(0, min(len(ds), 30)))
    joined = concat_batches([ds.__getitems__(indices[:7]), ds.__getitems__(indices[7:8]), ds.__getitems__(indices[8:])])
    whole = ds.__getitems__(indices)
    assert len(whole["churn_pos"]) > 0
    assert joined.keys() == whole.keys()
    for k in whole:
        assert torch.equal(joined[k], whole[k]), k
