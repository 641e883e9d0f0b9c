"""Refuse, before training starts, a configuration that cannot fit in the device's memory.

The estimate (bytes, per device) is deliberately simple and errs on the large side:
- parameters, gradients and AdamW's two moments: 16 bytes per parameter (float32 master weights, as
  Lightning keeps them under bf16-mixed too);
- activations kept for the backward pass: B x L x D per layer, times a per-encoder factor, plus the
  Transformer's (B, heads, L, L) attention maps;
- next-product logits: every position of a batch may carry a label (a user's first window scores all
  of them), so N = B x L rows; the full softmax holds (N, P) logits, the sampled one (N, 1 + S). Each
  cell costs about 18 bytes: the bf16 (or float32) product, the float32 logits with the bias, their
  copy with the recent-history bonus added, the float32 log-softmax kept for the backward and its
  gradient; the sampled scores also keep the masks of draws already scored exactly (2 bytes a cell);
- evaluation ranks in chunks of at most 2^25 cells (models.ranking.chunked_ranks), which adds little.
Available memory: free memory of the GPU (torch.cuda.mem_get_info) or available RAM on the CPU.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

from models.encoding import HISTORY_COUNTS, HISTORY_TIMES, WHOLE_HISTORY
from models.network import ModelConfig
from models.session_features import N_SHAPE, N_SIDE
from training.config import TrainConfig
from events.errors import UserFacingError

log = logging.getLogger(__name__)
GIB = 1 << 30
LOGIT_CELL_BYTES = 18
OPTIMIZER_BYTES_PER_PARAM = 16  # weight + grad + AdamW exp_avg + exp_avg_sq, float32
RANK_CHUNK_CELLS = 1 << 25
HEADROOM = 0.9  # use at most this share of what is available (allocator fragmentation, CUDA context)


@dataclass
class MemoryEstimate:
    params: int
    optimizer: int  # parameters + gradients + optimizer state
    activations: int
    logits: int
    evaluation: int
    available: int | None
    device: str

    @property
    def total(self) -> int:
        return self.optimizer + self.activations + self.logits + self.evaluation

    def describe(self) -> str:
        g = lambda b: f"{b / GIB:.2f} GiB"
        avail = g(self.available) if self.available is not None else "unknown"
        return (f"~{g(self.total)} on {self.device} (weights+grads+AdamW {g(self.optimizer)}, activations "
                f"{g(self.activations)}, next-product logits {g(self.logits)}, evaluation {g(self.evaluation)}); "
                f"available {avail}")


def count_parameters(cfg: ModelConfig) -> int:
    d = cfg.d_model
    emb = (cfg.n_products + cfg.n_categories + cfg.n_brands + cfg.n_event_types + cfg.n_price_buckets
           + cfg.n_gap_buckets + 3) * d + (cfg.max_len * d if cfg.encoder == "transformer" else 0) + 2 * d
    if cfg.encoder == "gru":
        enc = cfg.n_layers * (2 * 3 * (d * d + d))
    else:
        enc = cfg.n_layers * (4 * d * d + 4 * d + 2 * 4 * d * d + 5 * d + 4 * d)
    n_wide = len(WHOLE_HISTORY) if cfg.churn_wide else 0  # the churn head's history counts and times
    heads = (d * d + d + d + 1) + ((d + 1 + n_wide) * d + d + d + 1) + (d * d + d) + cfg.n_products \
        + (d + 1) * cfg.n_categories + (d + 1) * cfg.n_brands + 2 * d
    side = (N_SIDE * d + d + d * d + d) if cfg.side_features else 0  # the wide side inputs' two layers
    side += (N_SHAPE * d + d + d * d + d) if cfg.session_shape else 0  # the session shape's two layers
    side += (len(HISTORY_COUNTS) * d + d + d * d + d) if cfg.history_counts else 0  # the history counts' two layers
    side += (len(HISTORY_TIMES) * d + d + d * d + d) if cfg.history_times else 0  # the history times' two layers
    cooc = 2 * cfg.history if cfg.cooc_neighbours else 0  # the transition-evidence weight per direction and step
    repeat = (d * d + d + cfg.history + d + 1) if cfg.repeat else 0  # pointer query, recency bias, gate
    return emb + enc + heads + side + cooc + repeat + cfg.history  # + the recency bonus per history step


def estimate(cfg: ModelConfig, tc: TrainConfig, available: int | None, device: str) -> MemoryEstimate:
    B, L, D = tc.batch_size, cfg.max_len, cfg.d_model
    act_bytes = 2 if "bf16" in tc.precision or "16" in tc.precision else 4
    params = count_parameters(cfg)
    per_layer = 12 if cfg.encoder == "gru" else 24  # GRU gates; Transformer attention + 4D feed-forward
    activations = B * L * D * act_bytes * (8 + per_layer * cfg.n_layers)
    if cfg.encoder == "transformer":
        activations += cfg.n_layers * B * cfg.n_heads * L * L * (act_bytes + 4)
    n_rows = B * L
    history = cfg.history
    if tc.next_loss == "full":
        logits = n_rows * cfg.n_products * LOGIT_CELL_BYTES
    else:
        # (N, 1 + K + S) logits, plus two bytes a cell for the masks of draws already scored exactly
        logits = n_rows * (1 + history + tc.n_negatives) * (LOGIT_CELL_BYTES + 2) + n_rows * history * D * 4 * 3
    # head inputs and their gradients (intent, churn, category, brand) are small beside the logits
    logits += n_rows * (cfg.n_categories + cfg.n_brands) * LOGIT_CELL_BYTES
    evaluation = min(RANK_CHUNK_CELLS, max(cfg.n_products, 1) * n_rows) * 4 * 3
    buffers = 2 * cfg.n_products * 8  # product -> category / brand maps (int64)
    return MemoryEstimate(params, params * OPTIMIZER_BYTES_PER_PARAM + buffers, activations, logits, evaluation,
                          available, device)


def available_memory(accelerator: str) -> tuple[int | None, str]:
    """(bytes available, device name) for the chosen accelerator; None when it cannot be told."""
    wants_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if wants_gpu:
        if not torch.cuda.is_available():
            return None, "gpu"
        free, _ = torch.cuda.mem_get_info()
        return int(free), f"cuda ({torch.cuda.get_device_name()})"
    try:
        import psutil

        return int(psutil.virtual_memory().available), "cpu"
    except ImportError:
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")), "cpu"
        except (ValueError, OSError, AttributeError):
            return None, "cpu"


def check_memory(cfg: ModelConfig, tc: TrainConfig, available: int | None = None,
                 device: str | None = None) -> MemoryEstimate:
    """Raise UserFacingError naming the setting to change when the estimate exceeds available memory."""
    if available is None and device is None:
        available, device = available_memory(tc.accelerator)
    est = estimate(cfg, tc, available, device or "cpu")
    log.info("memory estimate: %s", est.describe())
    if available is None or est.total <= HEADROOM * available:
        return est
    g = lambda b: f"{b / GIB:.1f} GiB"
    products = f"{cfg.n_products:,} products"
    if tc.next_loss == "full" and est.logits > est.total / 2:
        advice = (f"train.next_loss=full at {products} needs ~{g(est.logits)} of logits per batch "
                  f"(train.batch_size={tc.batch_size} x model.max_len={cfg.max_len} rows x {cfg.n_products:,}); "
                  f"use train.next_loss=sampled or lower train.batch_size")
    elif est.logits > est.total / 2:
        advice = (f"the sampled softmax needs ~{g(est.logits)} of logits per batch; lower train.n_negatives "
                  f"(now {tc.n_negatives}) or train.batch_size (now {tc.batch_size})")
    elif est.optimizer > est.total / 2:
        advice = (f"the model's {est.params:,} parameters need ~{g(est.optimizer)} with gradients and AdamW state "
                  f"(the product table is {products} x model.d_model={cfg.d_model}); lower model.d_model or raise "
                  f"labels.min_count to shrink the catalogue")
    else:
        advice = (f"activations need ~{g(est.activations)}; lower train.batch_size (now {tc.batch_size}), "
                  f"model.max_len (now {cfg.max_len}) or model.n_layers (now {cfg.n_layers})")
    raise UserFacingError(f"this configuration does not fit in memory on {est.device}: needs {g(est.total)}, "
                          f"{g(available)} available. {advice}")
