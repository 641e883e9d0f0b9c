"""Teaching the shared encoder what the baselines' hand-made session features say, before an uplift head is
fitted on its state (training/uplift_fit.py).

The encoder was trained for intent, churn and next product; what it did not need for those (how soon the
shopper came back, how many sessions they had without buying) it need not keep, and no head on its state can
then recover it: on the benchmark, even a head fitted to the *true* uplift reached only about half of the
oracle from the frozen state. Fitting the encoder to the uplift outcomes themselves barely helped (they are
too noisy). Here it learns, on the decision points' windows, to predict the intent baseline's session
features (training/baselines/intent.py: recency, earlier sessions and purchases, cart adds ...) through a
linear probe that is thrown away after, with a pull towards the original encoder's states over every
position of the windows (`anchor_weight`): every other head reads those states, so the other signals move
only a little (the change is reported beside the result). The features are the baseline's, not the
simulator's rule: the model is taught to know at least what the feature-based learner reads.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from models.network import SessionSignalsModel
from training.uplift_data import Windows


@dataclass
class FineTuneConfig:
    enabled: bool = False
    """Also fit each design on the taught encoder (kept only if it wins on validation). Off by default: on the
    benchmark the wide head on the frozen encoder beat every taught candidate, and teaching moves the other
    signals (benchmarks/README.md, "Uplift")."""
    max_epochs: int = 6
    patience: int = 2
    batch_size: int = 256
    lr: float = 1e-3
    anchor_weight: float = 1.0
    """Weight of the mean squared distance between the taught and the original encoder's states."""


def feature_targets(features: pd.DataFrame, train: np.ndarray) -> torch.Tensor:
    """(N, F) features -> standardised targets: log1p of the non-negative ones, scaled on the training rows,
    missing (a first session has no recency) as the mean."""
    x = features.to_numpy(np.float64)
    x = np.where(np.nanmin(x, axis=0) >= 0, np.log1p(np.maximum(x, 0)), x)
    mean, sd = np.nanmean(x[train], axis=0), np.nanstd(x[train], axis=0)
    z = (x - mean) / np.where(sd > 0, sd, 1.0)
    return torch.from_numpy(np.nan_to_num(z, nan=0.0).astype(np.float32))


def teach_features(model: SessionSignalsModel, windows: Windows, targets: torch.Tensor, train: np.ndarray,
                   val: np.ndarray, cfg: FineTuneConfig, seed: int) -> tuple[SessionSignalsModel, int]:
    """A copy of `model` whose encoder was taught `targets` (N, F) at the windows' last events; its epochs."""
    torch.manual_seed(seed)
    original = model.eval()
    tuned = copy.deepcopy(model)
    probe = nn.Linear(model.cfg.d_model, targets.shape[1])
    # Only the encoder and the probe get gradients; the heads' parameters never do, so AdamW (which skips
    # parameters without a gradient) leaves them exactly as trained.
    optimiser = torch.optim.AdamW([*tuned.parameters(), *probe.parameters()], lr=cfg.lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)

    def losses(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        batch, last = windows.batch(index)
        h = tuned.encode(batch)  # (b, L, D)
        fit = ((probe(h[torch.arange(len(index)), last]) - targets[index]) ** 2).mean()
        with torch.no_grad():
            anchor = original.encode(batch)  # (b, L, D)
        valid = torch.arange(windows.max_len)[None, :] <= last[:, None]  # (b, L)
        return fit, ((h - anchor) ** 2).mean(-1)[valid].mean()

    def val_loss() -> float:
        tuned.eval()
        with torch.no_grad():
            parts = [sum(losses(b.numpy())) * len(b) for b in torch.from_numpy(val).split(1024)]
        return float(sum(parts) / len(val))

    best, best_epoch, best_state = val_loss(), 0, copy.deepcopy(tuned.state_dict())
    for epoch in range(1, cfg.max_epochs + 1):
        tuned.train()
        for batch in torch.from_numpy(train)[torch.randperm(len(train), generator=generator)].split(cfg.batch_size):
            optimiser.zero_grad()
            fit, drift = losses(batch.numpy())
            (fit + cfg.anchor_weight * drift).backward()
            optimiser.step()
        current = val_loss()
        if current < best - 1e-6:
            best, best_epoch, best_state = current, epoch, copy.deepcopy(tuned.state_dict())
        elif epoch - best_epoch >= cfg.patience:
            break
    tuned.load_state_dict(best_state)
    return tuned.eval(), best_epoch
