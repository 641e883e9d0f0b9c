"""The LightningModule: one shared step, a weighted multi-task loss, validation metrics for early stopping."""
from __future__ import annotations

import time

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryAveragePrecision

from models.cooccurrence import transition_table
from models.losses import full_softmax_loss, proposal, sample_negatives, sampled_softmax_loss
from models.network import ModelConfig, SessionSignalsModel, feature_batch, recent_products
from models.ranking import TOP_K
from models.vocab import N_RESERVED
from training.config import TrainConfig


class SignalsModule(L.LightningModule):
    def __init__(self, model_cfg: dict, train_cfg: dict, log_popularity: torch.Tensor | None = None):
        """`log_popularity`: (P,) log share of each product in training, from which the sampled softmax
        draws its negatives (`train.negative_power`)."""
        super().__init__()
        self.save_hyperparameters(ignore=["log_popularity"])
        self.model = SessionSignalsModel(ModelConfig(**model_cfg))
        self.tc = TrainConfig(**train_cfg)
        if log_popularity is None:  # uniform over the real products
            log_popularity = torch.zeros(self.model.cfg.n_products).index_fill_(0, torch.arange(N_RESERVED), -1e9)
        self.register_buffer("log_q", proposal(log_popularity, self.tc.negative_power), persistent=False)
        self.val_intent_ap = BinaryAveragePrecision()
        self.val_churn_ap = BinaryAveragePrecision()
        self.val_next_mrr = MeanMetric()
        self._seen = {"intent": 0, "churn": 0, "next": 0}
        self._t0 = time.perf_counter()
        self._train_step = None  # shared_step, compiled on first use when train.compile
        self._log_now = False  # this training step logs its metrics (see _logging_step)

    def shared_step(self, batch: dict[str, torch.Tensor], negatives: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Weighted multi-task loss of one batch (and, in eval mode, what the validation metrics need).

        No host-device sync: labelled rows are picked with the indices `collate` found on the host, and
        a task with no label in the batch is skipped on the index's size, which the host knows. That
        keeps the GPU fed and lets torch.compile take the whole step (`train.compile`).
        `negatives`: (S,) shared draws for `next_loss=sampled` (drawn outside, see `draw_negatives`).
        """
        x = feature_batch(batch)
        h = self.model.encode(x)  # (B, L, D)
        flat = h.flatten(0, 1)  # (B*L, D)
        out: dict[str, torch.Tensor] = {}
        losses = {}

        intent_index = batch["intent_index"]  # (N_i,) flat positions with an intent label
        if intent_index.numel():
            logits = self.model.intent_logit(flat[intent_index]).float()  # (N_i,)
            target = batch["intent"].flatten()[intent_index].float()
            losses["intent"] = F.binary_cross_entropy_with_logits(logits, target)
            if not self.training:
                out["intent_prob"], out["intent_target"] = torch.sigmoid(logits), target.long()

        if batch["churn_pos"].numel():
            hc = h[batch["churn_batch"], batch["churn_pos"]]  # (M, D)
            wide = self.model.churn_inputs(x, batch["churn_batch"], batch["churn_pos"])  # (M, 5) or None
            logits = self.model.churn_logit(hc, batch["churn_gap"], wide).float()  # (M,)
            losses["churn"] = F.binary_cross_entropy_with_logits(logits, batch["churn_label"])
            if not self.training:
                out["churn_prob"], out["churn_target"] = torch.sigmoid(logits), batch["churn_label"].long()

        next_index = batch["next_index"]  # (N,) flat positions whose next product is known (unseen ones dropped)
        if next_index.numel():
            hn = flat[next_index]  # (N, D)
            history = recent_products(batch["product"], self.model.cfg.history).flatten(0, 1)[next_index]  # (N, K)
            target = batch["next_product"].flatten()[next_index]  # (N,)
            if self.tc.next_loss == "sampled":
                q = self.model.product_query_vectors(hn)  # (N, D)
                exact = self.model.score_products(q, torch.cat([target.unsqueeze(1), history], 1), history)  # (N, 1+K)
                nll = sampled_softmax_loss(exact[:, 0], self.model.score_shared(q, negatives), negatives,
                                           target, self.log_q, exact[:, 1:], history, reduction="none")  # (N,)
                if self.model.repeat is not None:  # the estimate is the explore half; the mixture adds the pointer
                    nll = -self.model.repeat_log_prob(hn, history, -nll, target)
                losses["next"] = nll.mean()
            else:
                loo = target if self.training else None  # this position's own transition is not evidence
                losses["next"] = full_softmax_loss(self.model.product_logits(hn, history, loo_target=loo), target)
            if not self.training:
                out["next_rank"] = self.model.next_product_ranks(hn.detach(), history, target)
            affinity = F.cross_entropy(self.model.category_logits(hn).float(), batch["next_category"].flatten()[next_index])
            affinity = affinity + F.cross_entropy(self.model.brand_logits(hn).float(),
                                                  batch["next_brand"].flatten()[next_index])
            losses["affinity"] = affinity

        weights = {"intent": self.tc.intent_weight, "churn": self.tc.churn_weight,
                   "next": self.tc.next_weight, "affinity": self.tc.affinity_weight}
        zero = h.sum() * 0.0  # keeps the graph connected when a batch has no label at all
        out["loss"] = sum((weights[k] * v for k, v in losses.items()), zero)
        out.update({f"loss_{k}": v.detach() for k, v in losses.items()})
        return out

    def on_train_start(self) -> None:
        """Fill the model's transition evidence from the training split's (product, next product) pairs."""
        if not self.model.cfg.cooc_neighbours:
            return
        loader = self.trainer.train_dataloader
        arrays = getattr(getattr(loader, "dataset", None), "a", None)  # in-memory WindowDataset's SplitArrays
        if arrays is None:  # streaming: no flat arrays here; the evidence stays empty (weight learns nothing)
            return
        set_transitions_from_pairs(self.model, torch.from_numpy(arrays.features["product"]),
                                   torch.from_numpy(arrays.next_product))

    def draw_negatives(self) -> torch.Tensor | None:
        """(S,) shared negatives for this step, or None with the full softmax.

        Drawn outside the (compiled) step: random sampling stays in eager PyTorch, on the device.
        """
        if self.tc.next_loss != "sampled":
            return None
        return sample_negatives(self.log_q, self.tc.n_negatives)

    def train_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`shared_step` of a training batch; compiled on first use when `train.compile`."""
        if self._train_step is None:
            # dynamic=True: the number of labelled rows changes every batch; one graph serves them all.
            self._train_step = torch.compile(self.shared_step, dynamic=True) if self.tc.compile else self.shared_step
        return self._train_step(batch, self.draw_negatives())

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.train_loss(batch)
        self._log_now = self._logging_step()
        if self._log_now:
            self.log("train_loss", out["loss"], prog_bar=True, batch_size=batch["product"].shape[0])
            for k in ("intent", "churn", "next", "affinity"):
                if f"loss_{k}" in out:
                    self.log(f"train_loss_{k}", out[f"loss_{k}"], batch_size=batch["product"].shape[0])
        return out["loss"]

    def _logging_step(self) -> bool:
        """Log training metrics only on the steps the logger writes (and an epoch's last).

        Every `self.log` costs host time, and on a GPU the compiled step waits on the host (on an H100,
        logging every step added 5-8 ms to a step of 11-13 ms); a Python float logged also becomes a
        device tensor: a host-device sync.
        """
        return (self.global_step + 1) % self.trainer.log_every_n_steps == 0 or self.trainer.is_last_batch

    def on_train_epoch_start(self) -> None:
        self._t0, self._events = time.perf_counter(), 0

    def on_before_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        # Count real events while the batch is still on the host: no device sync in the step.
        if self.trainer.training:
            self._events += int((batch["product"] > 0).sum())
        return batch

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        elapsed = time.perf_counter() - self._t0
        if elapsed > 0 and self._log_now:
            # This process's own throughput; under DDP the total is about world_size times it.
            self.log("events_per_s", self._events / elapsed, prog_bar=True, on_step=True, on_epoch=True,
                     batch_size=1, rank_zero_only=True)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.shared_step(batch, self.draw_negatives())
        self.log("val_loss", out["loss"], prog_bar=True, batch_size=batch["product"].shape[0])
        if "intent_prob" in out:
            self.val_intent_ap.update(out["intent_prob"], out["intent_target"])
            self._seen["intent"] += 1
        if "churn_prob" in out:
            self.val_churn_ap.update(out["churn_prob"], out["churn_target"])
            self._seen["churn"] += 1
        if "next_rank" in out:
            rr = torch.where(out["next_rank"] <= TOP_K, 1.0 / out["next_rank"].float(), 0.0)
            self.val_next_mrr.update(rr)
            self._seen["next"] += 1

    def on_validation_epoch_end(self) -> None:
        scores = []
        # A binary task whose validation labels are all one class (click-only data: no purchase) has no
        # PR-AUC to speak of; averaging its 0 in would halve the score that early stopping follows.
        for metric in (self.val_intent_ap, self.val_churn_ap):
            if metric.target and torch.cat(metric.target).unique().numel() < 2:
                self._seen["intent" if metric is self.val_intent_ap else "churn"] = 0
        for key, metric, name in ((("intent", self.val_intent_ap, "val_intent_pr_auc")),
                                  ("churn", self.val_churn_ap, "val_churn_pr_auc"),
                                  ("next", self.val_next_mrr, "val_next_mrr_at_20")):
            if self._seen[key]:
                value = metric.compute()
                self.log(name, value, prog_bar=True, sync_dist=True)
                scores.append(value)
            metric.reset()
            self._seen[key] = 0
        self.log("val_score", torch.stack(scores).mean() if scores else torch.tensor(0.0), prog_bar=True,
                 sync_dist=True)

    def configure_optimizers(self):
        # Fused: one kernel for all parameters on a GPU (the catalogue table is most of them).
        optimiser = torch.optim.AdamW(self.parameters(), lr=self.tc.lr, weight_decay=self.tc.weight_decay,
                                      fused=self.device.type == "cuda")
        if self.tc.lr_schedule == "constant":
            return optimiser
        # T_max is the config's max_epochs, not the trainer's: a refit of fewer epochs follows the same curve.
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=self.tc.max_epochs, eta_min=self.tc.lr / 20)
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": cosine, "interval": "epoch"}}


def set_transitions_from_pairs(model: SessionSignalsModel, product: torch.Tensor, next_product: torch.Tensor) -> None:
    """(E,) product ids and (E,) the next product in the same session (-1 / PAD / UNK: no pair)."""
    keep = (next_product >= N_RESERVED) & (product >= N_RESERVED)
    src, dst = product[keep], next_product[keep]
    P, M = model.cfg.n_products, model.cfg.cooc_neighbours
    model.set_transitions(transition_table(src, dst, P, M), transition_table(dst, src, P, M))
