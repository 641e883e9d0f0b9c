"""The memory check refuses configurations that cannot fit, naming the setting to change, before training."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from models.network import ModelConfig, SessionSignalsModel
from training import memory_check
from training.config import TrainRunConfig, TrainConfig
from events.errors import UserFacingError
from training.memory_check import GIB, check_memory, count_parameters, estimate

H100 = 78 * GIB


def cfg(products: int, encoder: str = "gru", d: int = 128, layers: int = 1) -> ModelConfig:
    return ModelConfig(n_products=products, n_categories=150, n_brands=400, n_event_types=4, n_price_buckets=19,
                       n_gap_buckets=22, encoder=encoder, d_model=d, n_layers=layers, max_len=50)


@pytest.mark.parametrize("encoder,layers", [("gru", 1), ("gru", 2), ("transformer", 2)])
def test_parameter_count_matches_the_model(encoder, layers) -> None:
    c = cfg(1_000, encoder, d=32, layers=layers)
    assert count_parameters(c) == sum(p.numel() for p in SessionSignalsModel(c).parameters())


def test_full_softmax_at_a_million_products_is_refused_with_the_fix() -> None:
    tc = TrainConfig(batch_size=512, next_loss="full", precision="bf16-mixed")
    with pytest.raises(UserFacingError) as e:
        check_memory(cfg(1_000_000), tc, available=H100, device="cuda")
    msg = str(e.value)
    assert "train.next_loss=full at 1,000,000 products" in msg
    assert "train.next_loss=sampled" in msg and "train.batch_size" in msg


def test_sampled_softmax_at_a_million_products_fits() -> None:
    tc = TrainConfig(batch_size=512, next_loss="sampled", n_negatives=8192, precision="bf16-mixed")
    est = check_memory(cfg(1_000_000, "transformer", layers=2), tc, available=H100, device="cuda")
    assert est.total < 20 * GIB
    # full softmax at 100,000 products fits on the same card (the throughput benchmark ran it: ~15-29 GiB)
    full = estimate(cfg(100_000), TrainConfig(batch_size=512, next_loss="full", precision="bf16-mixed"), H100, "cuda")
    assert 10 * GIB < full.total < 0.9 * H100


def test_too_many_negatives_or_parameters_name_their_settings() -> None:
    with pytest.raises(UserFacingError, match="train.n_negatives"):
        check_memory(cfg(100_000), TrainConfig(batch_size=4096, next_loss="sampled", n_negatives=1 << 20),
                     available=16 * GIB, device="cpu")
    with pytest.raises(UserFacingError, match="model.d_model"):
        check_memory(cfg(50_000_000, d=256), TrainConfig(batch_size=8, next_loss="sampled", n_negatives=64),
                     available=16 * GIB, device="cpu")
    with pytest.raises(UserFacingError, match="train.batch_size"):
        check_memory(cfg(1_000, "transformer", d=512, layers=12),
                     TrainConfig(batch_size=65536, next_loss="sampled", n_negatives=64), available=16 * GIB, device="cpu")


def test_unknown_available_memory_never_blocks() -> None:
    check_memory(cfg(1_000_000), TrainConfig(next_loss="full"), available=None, device="gpu")


def test_cpu_available_memory_is_read() -> None:
    available, device = memory_check.available_memory("cpu")
    assert device == "cpu" and available is not None and available > 0


def test_fit_refuses_before_building_the_trainer(monkeypatch, tmp_path: Path) -> None:
    from training import lightning_fit as fit_module

    monkeypatch.setattr(memory_check, "available_memory", lambda accelerator: (2 * GIB, "cpu"))
    monkeypatch.setattr(fit_module.L, "Trainer", lambda *a, **k: pytest.fail("Trainer built despite the check"))
    config = TrainRunConfig()
    config.train.next_loss = "full"
    config.train.batch_size = 512
    prepared = SimpleNamespace(model_cfg=cfg(1_000_000), datasets={})
    with pytest.raises(UserFacingError, match="train.next_loss=sampled"):
        fit_module.fit(config, prepared, torch.zeros(1), logger=False, ckpt_dir=tmp_path, callbacks=None)
