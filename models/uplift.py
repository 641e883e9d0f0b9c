"""The uplift output: purchase probability of the current session with and without a treatment (a message
or discount sent now), read from the shared encoder's state.

Four designs, all residuals on the intent head's logit (the purchase chance the encoder already knows), so
that a head fitted on a few thousand randomised points starts from what the model knows and only learns
how treatment changes it:
  - "two_heads" (a T-learner on the shared encoder, as TARNet): logit_w = intent + g_w(h), one MLP per arm,
    each fitted on its own arm's points;
  - "shift" (a treatment-conditioned head): logit_w = intent + g(h) + w * tau(h); g is fitted on both arms,
    tau(h) is a linear map whose weight decay pulls the effect towards "the same for everyone", which the
    noisy difference of two separately fitted heads cannot do;
  - "segments": as "shift", but the effect is one learned value per segment, tau(h) = softmax(S h) . t, with
    SEGMENTS segments: effects that are constant within groups of shoppers (persuadables, sure things, lost
    causes, "do not disturb") are what this shape can say and a linear map of the state cannot;
  - "wide": as "shift", but the effect is an MLP of the decision's explicit state (`decision_inputs`: how soon
    the shopper came back, earlier purchases and sessions, the cart now), not of the learned state: the
    return gap is what the frozen state keeps worst (benchmarks/README.md, "Uplift"), and a low-dimensional
    input is what a few thousand noisy outcomes can fit (wide and deep, as the churn head's `churn_wide`).
The uplift is sigmoid(logit_1) - sigmoid(logit_0): the expected change in the chance that this session
ends in a purchase if treated now. Pure PyTorch; fitted by training/uplift_fit.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from models.encoding import GAP_MINUTES, N_GAP_BUCKETS
from models.session_features import SIDE_NET_CART, session_start_positions, session_starts, side_features

UPLIFT_DESIGNS = ("two_heads", "shift", "segments", "wide")
SEGMENTS = 6
N_DECISION = N_GAP_BUCKETS + 6


def decision_inputs(x: dict[str, torch.Tensor], rows: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """(B, L) features, (M,) rows and positions of the decisions -> (M, N_DECISION): the gap before the current
    session's first event (how soon the shopper came back: one-hot by gap bucket, which also says "first
    visit", and log1p of its minutes / 10, where a threshold inside a bucket can be drawn), log1p and "any" of
    the earlier purchases, log1p earlier sessions (whole history), log1p and "any" of the net cart now."""
    first = session_start_positions(session_starts(x))[rows, pos]  # (M,)
    gap = nn.functional.one_hot(x["gap_bucket"][rows, first], N_GAP_BUCKETS).float()  # (M, G)
    minutes = torch.log1p(x[GAP_MINUTES][rows, first].float()) / 10.0  # (M,)
    purchases = x["prior_purchases"][rows, pos].float()  # (M,)
    sessions = x["prior_sessions"][rows, pos].float()  # (M,)
    cart = side_features(x)[rows, pos, SIDE_NET_CART]  # (M,) log1p(net cart)
    return torch.cat([gap, torch.stack([minutes, torch.log1p(purchases), (purchases > 0).float(), torch.log1p(sessions),
                                        cart, (cart > 0).float()], -1)], -1)


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
        elif design == "wide":
            self.calibration = nn.Parameter(torch.tensor([1.0, 0.0]))  # control logit = a * intent + b
            self.effect = nn.Sequential(nn.Linear(N_DECISION, d), nn.GELU(), nn.Linear(d, 1))
            nn.init.zeros_(self.effect[-1].weight)  # starts at "no effect"
            nn.init.zeros_(self.effect[-1].bias)
        else:
            self.base = _residual_mlp(d)
            self.segment = nn.Linear(d, SEGMENTS)  # soft membership; its initial weights give distinct segments
            self.segment_effect = nn.Parameter(torch.zeros(SEGMENTS))  # starts at "no effect"

    def forward(self, h: torch.Tensor, intent_logit: torch.Tensor,
                decision: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, D) states, (N,) intent logits, (N, N_DECISION) `decision_inputs` -> (N,) logits of a purchase
        without and with treatment."""
        if self.design == "two_heads":
            return (intent_logit + self.arms[0](h).squeeze(-1), intent_logit + self.arms[1](h).squeeze(-1))
        if self.design == "wide":
            control = self.calibration[0] * intent_logit + self.calibration[1]  # (N,)
            return control, control + self.effect(decision).squeeze(-1)
        control = intent_logit + self.base(h).squeeze(-1)  # (N,)
        if self.design == "shift":
            return control, control + self.effect(h).squeeze(-1)
        effect = torch.softmax(self.segment(h), -1) @ self.segment_effect  # (N,)
        return control, control + effect

    def effect_parameters(self) -> list[nn.Parameter]:
        """What weight decay shrinks towards a homogeneous effect (the effect's dependence on the state)."""
        if self.design == "shift":
            return [self.effect.weight]
        if self.design == "wide":
            return [self.effect[0].weight, self.effect[2].weight]
        # segments: shrinking the membership weights makes every shopper the same mix of segments
        return [self.segment.weight] if self.design == "segments" else []


def uplift_at(model: nn.Module, h: torch.Tensor, x: dict[str, torch.Tensor], rows: torch.Tensor,
              pos: torch.Tensor) -> torch.Tensor:
    """(M, D) a SessionSignalsModel's states at (M,) rows and positions of (B, L) windows `x` -> (M,) the
    expected change in the chance of a purchase if treated now."""
    control, treated = model.uplift_head(h, model.intent_logit(h), decision_inputs(x, rows, pos))
    return torch.sigmoid(treated) - torch.sigmoid(control)


def bundle_has_uplift(bundle: Path) -> bool:
    """Whether a saved bundle's model has an uplift head (its model_config.json names the design)."""
    return bool(json.loads((Path(bundle) / "model_config.json").read_text()).get("uplift_head"))


def attach_uplift_head(model: nn.Module, head: UpliftHead) -> None:
    """Give a trained model its uplift head; the bundle then saves it (model_config.json names the design)."""
    model.cfg.uplift_head = head.design
    model.uplift_head = head
