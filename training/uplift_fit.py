"""Fitting an uplift head (models.uplift) on the randomised decision points of the training split, the
trained encoder frozen: its state is what the head reads, and the other signals stay exactly as trained.

Early stopping on the validation points' log loss (each point scored by its own arm's logit).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.uplift import UpliftHead


@dataclass
class UpliftFitConfig:
    max_epochs: int = 100
    patience: int = 10
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    effect_weight_decay: float = 1e-2
    """The shift design's effect weights: the pull towards one effect for everyone."""


def arm_logit(head: UpliftHead, state: torch.Tensor, intent: torch.Tensor, decision: torch.Tensor,
              treated: torch.Tensor) -> torch.Tensor:
    control, with_treatment = head(state, intent, decision)  # (N,), (N,)
    return torch.where(treated, with_treatment, control)


def fit_head(design: str, state: torch.Tensor, intent: torch.Tensor, decision: torch.Tensor, treated: np.ndarray,
             outcome: np.ndarray, train: np.ndarray, val: np.ndarray, cfg: UpliftFitConfig,
             seed: int) -> tuple[UpliftHead, int]:
    """(N, D) states, (N,) intent logits, (N, N_DECISION) decision inputs of every point -> the head with the
    best validation loss, and its epoch count."""
    torch.manual_seed(seed)
    head = UpliftHead(state.shape[1], design)
    effect = {id(p) for p in head.effect_parameters()}
    groups = [{"params": [p for p in head.parameters() if id(p) not in effect], "weight_decay": cfg.weight_decay},
              {"params": head.effect_parameters(), "weight_decay": cfg.effect_weight_decay}]
    optimiser = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr)
    w = torch.from_numpy(treated.astype(bool))
    y = torch.from_numpy(outcome.astype(np.float32))
    loss_fn = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state = float("inf"), 0, {k: v.clone() for k, v in head.state_dict().items()}
    train_t, val_t = torch.from_numpy(train), torch.from_numpy(val)
    for epoch in range(1, cfg.max_epochs + 1):
        head.train()
        for batch in train_t[torch.randperm(len(train_t), generator=generator)].split(cfg.batch_size):
            optimiser.zero_grad()
            loss_fn(arm_logit(head, state[batch], intent[batch], decision[batch], w[batch]), y[batch]).backward()
            optimiser.step()
        head.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(arm_logit(head, state[val_t], intent[val_t], decision[val_t], w[val_t]), y[val_t]))
        if val_loss < best - 1e-6:
            best, best_epoch = val_loss, epoch
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        elif epoch - best_epoch >= cfg.patience:
            break
    head.load_state_dict(best_state)
    return head.eval(), best_epoch


@torch.no_grad()
def predicted_uplift(head: UpliftHead, state: torch.Tensor, intent: torch.Tensor, decision: torch.Tensor) -> np.ndarray:
    control, treated = head(state, intent, decision)
    return (torch.sigmoid(treated) - torch.sigmoid(control)).double().numpy()
