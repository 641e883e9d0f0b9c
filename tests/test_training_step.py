"""The production training step: nothing read back from the device, only labelled positions count, compiles."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.utils.data import DataLoader

from tests.factories import random_events, write_events
from training.config import TrainRunConfig
from events.config_io import load_config, to_dict
from training.lightning_fit import fit
from training.training_data import TrainingData, prepare
from training.labels import TRAIN
from training.module import SignalsModule
from training.windows import collate


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[TrainRunConfig, TrainingData]:
    folder = write_events(random_events(n_users=40, days=30, n_products=60, seed=3), tmp_path_factory.mktemp("events"))
    cfg = load_config(TrainRunConfig, None, [f"data.path={folder}", "model.d_model=16", "model.dropout=0.0",
                                          "train.max_epochs=1", "train.batch_size=16", "train.n_negatives=32",
                                          "train.progress_bar=false", "tracking.register=false"])
    return cfg, prepare(cfg)


def make_module(cfg: TrainRunConfig, p: TrainingData, encoder: str, loss: str) -> SignalsModule:
    torch.manual_seed(0)
    model_cfg = replace(p.model_cfg, encoder=encoder, n_layers=2 if encoder == "transformer" else 1, n_heads=2)
    log_q = torch.from_numpy(p.log_popularity())
    module = SignalsModule(model_cfg.to_dict(), to_dict(replace(cfg.train, next_loss=loss)), log_q)
    module.model.set_catalogue(torch.from_numpy(p.encoder.product_category), torch.from_numpy(p.encoder.product_brand))
    return module.train()


def first_batch(p: TrainingData) -> dict[str, torch.Tensor]:
    return next(iter(DataLoader(p.datasets[TRAIN], batch_size=16, collate_fn=collate)))


@pytest.mark.parametrize("encoder", ["gru", "transformer"])
@pytest.mark.parametrize("loss", ["sampled", "full"])
def test_training_step_never_reads_a_value_back_from_the_device(prepared, encoder: str, loss: str) -> None:
    """Meta tensors have shapes but no values: any op whose result the host must read (a boolean
    mask, `.any()`, `.item()`: each a host-device sync on a GPU) raises here."""
    cfg, p = prepared
    module = make_module(cfg, p, encoder, loss).to("meta")
    batch = {k: v.to("meta") for k, v in first_batch(p).items()}
    out = module.train_loss(batch)
    out["loss"].backward()
    assert set(out) >= {"loss", "loss_intent", "loss_next", "loss_affinity"}
    assert module.model.product_query.weight.grad is not None


@pytest.mark.parametrize("loss", ["sampled", "full"])
def test_only_labelled_positions_count(prepared, loss: str) -> None:
    cfg, p = prepared
    module = make_module(cfg, p, "gru", loss)
    batch = first_batch(p)
    unlabelled = batch["next_product"] < 2
    assert unlabelled.any() and (~unlabelled).any()

    def loss_of(b: dict[str, torch.Tensor]) -> float:
        torch.manual_seed(1)  # the same sampled negatives
        return float(module.train_loss(b)["loss"].detach())

    base = loss_of(batch)
    noise = {**batch, "next_category": torch.where(unlabelled, torch.randint_like(batch["next_category"], 2, 5),
                                                   batch["next_category"])}
    assert loss_of(noise) == pytest.approx(base, rel=1e-6)
    labelled = unlabelled.logical_not().nonzero()[0]
    moved = {k: v.clone() for k, v in batch.items()}
    moved["next_category"][tuple(labelled)] = (moved["next_category"][tuple(labelled)] + 1) % len(p.encoder.categories)
    assert loss_of(moved) != pytest.approx(base, rel=1e-6)


@pytest.mark.e2e
def test_compiled_step_trains_through_lightning(prepared, tmp_path) -> None:
    """train.compile=true under Lightning (deterministic, as `fit` runs it) on the CPU backend."""
    cfg, p = prepared
    from torch._dynamo.utils import counters

    cfg = replace(cfg, train=replace(cfg.train, compile=True, next_loss="sampled"))
    log_q = torch.from_numpy(p.log_popularity())
    torch._dynamo.reset()
    counters.clear()
    module, best = fit(cfg, p, log_q, logger=False, ckpt_dir=tmp_path / "checkpoints", callbacks=None)
    assert counters["stats"]["unique_graphs"] >= 1  # dynamo captured the step
    assert best == best  # a finite validation score was recorded (NaN != NaN)


def test_cosine_rates_follow_the_configs_epochs_so_a_shorter_refit_replays_them(prepared, tmp_path) -> None:
    """train.lr_schedule=cosine: each epoch's rate is set by max_epochs, both in the early-stopped fit and in a
    refit of fewer epochs, so the refit trains with the rates the chosen epochs had."""
    import math

    import lightning as L

    cfg, p = prepared
    cfg = replace(cfg, train=replace(cfg.train, lr_schedule="cosine", max_epochs=4, lr=1e-3))

    class Rates(L.Callback):
        def __init__(self):
            self.seen: list[float] = []

        def on_train_epoch_start(self, trainer, module) -> None:
            self.seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    expected = [1e-3 / 20 + (1e-3 - 1e-3 / 20) * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    log_q = torch.from_numpy(p.log_popularity())
    full, refit = Rates(), Rates()
    fit(cfg, p, log_q, logger=False, ckpt_dir=tmp_path / "full", callbacks=[full])
    fit(cfg, p, log_q, logger=False, ckpt_dir=tmp_path / "refit", callbacks=[refit], epochs=2)
    assert full.seen == pytest.approx(expected[:len(full.seen)]) and len(full.seen) >= 2
    assert refit.seen == pytest.approx(expected[:2])
