"""Run a trained model over one split's windows and collect its test-point predictions."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from models.network import SessionSignalsModel, feature_batch, recent_products
from models.ranking import chunked_ranks
from training.windows import WindowDataset, collate


@dataclass
class Predictions:
    intent: pd.Series  # event row -> probability
    churn: pd.Series  # churn example index -> probability
    next_rank: pd.Series  # event row -> pessimistic rank of the true next product


@torch.inference_mode()
def predict(model: SessionSignalsModel, dataset: WindowDataset, batch_size: int = 256) -> Predictions:
    model.eval()
    table = model.product_table()  # (P, D), once for the whole split
    intent_rows, intent_p, churn_keys, churn_p, next_rows, next_ranks = [], [], [], [], [], []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        h = model.encode(feature_batch(batch))  # (B, L, D)
        mask = batch["intent"] >= 0
        intent_rows.append(batch["event_row"][mask])
        intent_p.append(torch.sigmoid(model.intent_logit(h[mask])))
        if batch["churn_pos"].numel():
            hc = h[batch["churn_batch"], batch["churn_pos"]]
            churn_keys.append(batch["churn_key"])
            churn_p.append(torch.sigmoid(model.churn_logit(hc, batch["churn_gap"])))
        mask = batch["next_product"] >= 2
        if mask.any():
            next_rows.append(batch["event_row"][mask])
            history = recent_products(batch["product"], model.cfg.history)[mask]  # (N, K)
            next_ranks.append(chunked_ranks(lambda q, hist: model.product_logits(q, hist, table), h[mask], history,
                                            batch["next_product"][mask], model.cfg.n_products))

    def series(keys: list[torch.Tensor], values: list[torch.Tensor]) -> pd.Series:
        if not keys:
            return pd.Series(dtype=np.float64)
        return pd.Series(torch.cat(values).double().numpy(), index=torch.cat(keys).numpy()).sort_index()

    return Predictions(series(intent_rows, intent_p), series(churn_keys, churn_p), series(next_rows, next_ranks))
