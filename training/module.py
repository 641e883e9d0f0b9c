"""The LightningModule: one shared step, a weighted multi-task loss, validation metrics for early stopping."""
from __future__ import annotations

import time

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryAveragePrecision

from models.losses import full_softmax_loss, sample_negatives, sampled_softmax_loss
from models.network import ModelConfig, SessionSignalsModel, feature_batch, recent_products
from models.ranking import chunked_ranks
from training.config import TrainSection

RANK_K = 20


class SignalsModule(L.LightningModule):
    def __init__(self, model_cfg: dict, train_cfg: dict, log_q: torch.Tensor | None = None):
        """`log_q`: (P,) log of the training popularity distribution, the sampled softmax's proposal."""
        super().__init__()
        self.save_hyperparameters(ignore=["log_q"])
        self.model = SessionSignalsModel(ModelConfig(**model_cfg))
        self.tc = TrainSection(**train_cfg)
        if log_q is None:
            log_q = torch.full((self.model.cfg.n_products,), -float(torch.log(torch.tensor(self.model.cfg.n_products))))
        self.register_buffer("log_q", log_q.float(), persistent=False)
        self.val_intent_ap = BinaryAveragePrecision()
        self.val_churn_ap = BinaryAveragePrecision()
        self.val_next_mrr = MeanMetric()
        self._seen = {"intent": 0, "churn": 0, "next": 0}
        self._t0 = time.perf_counter()

    def shared_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        h = self.model.encode(feature_batch(batch))  # (B, L, D)
        out: dict[str, torch.Tensor] = {}
        zero = h.sum() * 0.0  # keeps the graph connected when a task has no label in this batch
        losses = {}

        intent_mask = batch["intent"] >= 0  # (B, L)
        if intent_mask.any():
            logits = self.model.intent_logit(h[intent_mask])  # (N,)
            target = batch["intent"][intent_mask].float()
            losses["intent"] = F.binary_cross_entropy_with_logits(logits.float(), target)
            out["intent_prob"], out["intent_target"] = torch.sigmoid(logits.float()), target.long()

        if batch["churn_pos"].numel():
            hc = h[batch["churn_batch"], batch["churn_pos"]]  # (M, D)
            logits = self.model.churn_logit(hc, batch["churn_gap"])  # (M,)
            losses["churn"] = F.binary_cross_entropy_with_logits(logits.float(), batch["churn_label"])
            out["churn_prob"], out["churn_target"] = torch.sigmoid(logits.float()), batch["churn_label"].long()

        next_mask = batch["next_product"] >= 2  # known product (not PAD/UNK): unseen targets are dropped
        if next_mask.any():
            hn = h[next_mask]  # (N, D)
            history = recent_products(batch["product"], self.model.cfg.history)[next_mask]  # (N, K)
            target = batch["next_product"][next_mask]
            if self.tc.next_loss == "sampled":
                negatives = sample_negatives(self.log_q, self.tc.n_negatives)  # (S,)
                q = self.model.product_query_vectors(hn)
                pos = self.model.score_products(q, target.unsqueeze(1), history).squeeze(1)  # (N,)
                neg = self.model.score_products(q, negatives, history)  # (N, S)
                losses["next"] = sampled_softmax_loss(pos, neg, target, negatives, self.log_q)
            else:
                losses["next"] = full_softmax_loss(self.model.product_logits(hn, history), target)  # (N, P) logits
            if not self.training:
                table = self.model.product_table()  # (P, D), once for all chunks of this batch
                out["next_rank"] = chunked_ranks(lambda q, hist: self.model.product_logits(q, hist, table),
                                                 hn.detach(), history, target, self.model.cfg.n_products)
            affinity = F.cross_entropy(self.model.category_logits(hn).float(), batch["next_category"][next_mask])
            affinity = affinity + F.cross_entropy(self.model.brand_logits(hn).float(), batch["next_brand"][next_mask])
            losses["affinity"] = affinity

        weights = {"intent": self.tc.intent_weight, "churn": self.tc.churn_weight,
                   "next": self.tc.next_weight, "affinity": self.tc.affinity_weight}
        out["loss"] = sum((weights[k] * v for k, v in losses.items()), zero)
        out.update({f"loss_{k}": v.detach() for k, v in losses.items()})
        return out

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.shared_step(batch)
        self.log("train_loss", out["loss"], prog_bar=True, batch_size=batch["product"].shape[0])
        for k in ("intent", "churn", "next", "affinity"):
            if f"loss_{k}" in out:
                self.log(f"train_loss_{k}", out[f"loss_{k}"], batch_size=batch["product"].shape[0])
        return out["loss"]

    def on_train_epoch_start(self) -> None:
        self._t0, self._events = time.perf_counter(), 0

    def on_before_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        # Count real events while the batch is still on the host: no device sync in the step.
        if self.trainer.training:
            self._events += int((batch["product"] > 0).sum())
        return batch

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        elapsed = time.perf_counter() - self._t0
        if elapsed > 0:
            # This process's own throughput; under DDP the total is about world_size times it.
            self.log("events_per_s", self._events / elapsed, prog_bar=True, on_step=True, on_epoch=True,
                     batch_size=1, rank_zero_only=True)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.shared_step(batch)
        self.log("val_loss", out["loss"], prog_bar=True, batch_size=batch["product"].shape[0])
        if "intent_prob" in out:
            self.val_intent_ap.update(out["intent_prob"], out["intent_target"])
            self._seen["intent"] += 1
        if "churn_prob" in out:
            self.val_churn_ap.update(out["churn_prob"], out["churn_target"])
            self._seen["churn"] += 1
        if "next_rank" in out:
            rr = torch.where(out["next_rank"] <= RANK_K, 1.0 / out["next_rank"].float(), 0.0)
            self.val_next_mrr.update(rr)
            self._seen["next"] += 1

    def on_validation_epoch_end(self) -> None:
        scores = []
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
        return torch.optim.AdamW(self.parameters(), lr=self.tc.lr, weight_decay=self.tc.weight_decay)
