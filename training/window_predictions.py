"""Run a trained model over one split's windows and collect its test-point predictions."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from models.network import SessionSignalsModel, feature_batch, recent_products
from training.windows import WindowDataset, collate


@dataclass
class Predictions:
    intent: pd.Series  # event row -> probability
    churn: pd.Series  # churn example index -> probability
    next_rank: pd.Series  # event row -> pessimistic rank of the true next product


@torch.inference_mode()
def predict(model: SessionSignalsModel, dataset: WindowDataset, batch_size: int = 256,
            device: torch.device | str = "cpu") -> Predictions:
    """Predictions at every labelled position of the dataset's windows (the rows `collate` indexes)."""
    model.eval().to(device)
    table = model.product_table()  # (P, D), once for the whole split
    intent_rows, intent_p, churn_keys, churn_p, next_rows, next_ranks = [], [], [], [], [], []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        host = batch  # row keys and label indices are read here, never copied back from the device
        rows = host["event_row"].flatten()  # (B*L,)
        batch = {k: v.to(device) for k, v in batch.items()}
        x = feature_batch(batch)
        h = model.encode(x)  # (B, L, D)
        flat = h.flatten(0, 1)  # (B*L, D)
        intent_rows.append(rows[host["intent_index"]])
        intent_p.append(torch.sigmoid(model.intent_logit(flat[batch["intent_index"]])).cpu())
        if host["churn_pos"].numel():
            hc = h[batch["churn_batch"], batch["churn_pos"]]
            churn_keys.append(host["churn_key"])
            wide = model.churn_inputs(x, batch["churn_batch"], batch["churn_pos"])
            churn_p.append(torch.sigmoid(model.churn_logit(hc, batch["churn_gap"], wide)).cpu())
        index = batch["next_index"]
        if index.numel():
            next_rows.append(rows[host["next_index"]])
            history = recent_products(batch["product"], model.cfg.history).flatten(0, 1)[index]  # (N, K)
            next_ranks.append(model.next_product_ranks(flat[index], history, batch["next_product"].flatten()[index],
                                                       table).cpu())

    def series(keys: list[torch.Tensor], values: list[torch.Tensor]) -> pd.Series:
        if not keys:
            return pd.Series(dtype=np.float64)
        return pd.Series(torch.cat(values).double().numpy(), index=torch.cat(keys).numpy()).sort_index()

    return Predictions(series(intent_rows, intent_p), series(churn_keys, churn_p), series(next_rows, next_ranks))
