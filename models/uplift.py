"""The uplift output: purchase probability of the current session with and without a treatment (a message
or discount sent now), read from the shared encoder's state.

Two designs, both residuals on the intent head's logit (the purchase chance the encoder already knows), so
that a head fitted on a few thousand randomised points starts from what the model knows and only learns
how treatment changes it:
  - "two_heads" (a T-learner on the shared encoder, as TARNet): logit_w = intent + g_w(h), one MLP per arm,
    each fitted on its own arm's points;
  - "shift" (a treatment-conditioned head): logit_w = intent + g(h) + w * tau(h); g is fitted on both arms,
    tau(h) is a linear map whose weight decay pulls the effect towards "the same for everyone", which the
    noisy difference of two separately fitted heads cannot do;
  - "segments": as "shift", but the effect is one learned value per segment, tau(h) = softmax(S h) . t, with
    SEGMENTS segments: effects that are constant within groups of shoppers (persuadables, sure things, lost
    causes, "do not disturb") are what this shape can say and a linear map of the state cannot.
The uplift is sigmoid(logit_1) - sigmoid(logit_0): the expected change in the chance that this session
ends in a purchase if treated now. Pure PyTorch; fitted by training/uplift_fit.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

UPLIFT_DESIGNS = ("two_heads", "shift", "segments")
SEGMENTS = 6


def _residual_mlp(d: int) -> nn.Sequential:
    mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))
    nn.init.zeros_(mlp[-1].weight)  # starts at the intent head's answer
    nn.init.zeros_(mlp[-1].bias)
    return mlp


class UpliftHead(nn.Module):
    def __init__(self, d: int, design: str):
        super().__init__()
        if design not in UPLIFT_DESIGNS:
            raise ValueError(f"uplift design {design!r} is not one of {', '.join(UPLIFT_DESIGNS)}")
        self.design = design
        if design == "two_heads":
            self.arms = nn.ModuleList([_residual_mlp(d), _residual_mlp(d)])
        elif design == "shift":
            self.base = _residual_mlp(d)
            self.effect = nn.Linear(d, 1)
            nn.init.zeros_(self.effect.weight)
            nn.init.zeros_(self.effect.bias)
        else:
            self.base = _residual_mlp(d)
            self.segment = nn.Linear(d, SEGMENTS)  # soft membership; its initial weights give distinct segments
            self.segment_effect = nn.Parameter(torch.zeros(SEGMENTS))  # starts at "no effect"

    def forward(self, h: torch.Tensor, intent_logit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, D) states, (N,) intent logits -> (N,) logits of a purchase without and with treatment."""
        if self.design == "two_heads":
            return (intent_logit + self.arms[0](h).squeeze(-1), intent_logit + self.arms[1](h).squeeze(-1))
        control = intent_logit + self.base(h).squeeze(-1)  # (N,)
        if self.design == "shift":
            return control, control + self.effect(h).squeeze(-1)
        effect = torch.softmax(self.segment(h), -1) @ self.segment_effect  # (N,)
        return control, control + effect

    def effect_parameters(self) -> list[nn.Parameter]:
        """What weight decay shrinks towards a homogeneous effect (the effect's dependence on the state)."""
        if self.design == "shift":
            return [self.effect.weight]
        # segments: shrinking the membership weights makes every shopper the same mix of segments
        return [self.segment.weight] if self.design == "segments" else []


def purchase_with_and_without(model: nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) encoder states of a SessionSignalsModel with an uplift head -> (N,) purchase probability if
    not treated, (N,) if treated now."""
    control, treated = model.uplift_head(h, model.intent_logit(h))
    return torch.sigmoid(control), torch.sigmoid(treated)


@torch.inference_mode()
def uplift_of_states(model: nn.Module, representation: np.ndarray) -> np.ndarray | None:
    """(B, D) encoder states after each shopper's latest event (NaN rows: empty history) -> (B,) uplift, NaN
    where there is no history; None when the model has no uplift head."""
    if model.uplift_head is None:
        return None
    uplift = np.full(len(representation), np.nan)
    present = ~np.isnan(representation).any(axis=1)
    if present.any():
        control, treated = purchase_with_and_without(model, torch.from_numpy(representation[present]))
        uplift[present] = (treated - control).double().numpy()
    return uplift


def bundle_has_uplift(bundle: Path) -> bool:
    """Whether a saved bundle's model has an uplift head (its model_config.json names the design)."""
    return bool(json.loads((Path(bundle) / "model_config.json").read_text()).get("uplift_head"))


def attach_uplift_head(model: nn.Module, head: UpliftHead) -> None:
    """Give a trained model its uplift head; the bundle then saves it (model_config.json names the design)."""
    model.cfg.uplift_head = head.design
    model.uplift_head = head
