"""The TEST split's scored points, defined once: the in-memory comparison and the streaming evaluation
score every method at exactly these points."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.encoding import EventEncoder
from training.baselines.next_item import next_query_rows
from training.labels import TEST, Labels


@dataclass
class ScoredPoints:
    intent_rows: np.ndarray  # (Ni,) event rows with a TEST intent label
    intent_y: np.ndarray  # (Ni,) 0 / 1
    churn_keys: np.ndarray  # (Nc,) TEST churn examples (index into Labels.churn)
    churn_y: np.ndarray  # (Nc,) 0 / 1
    next_rows: np.ndarray  # (Nn,) event rows whose next product is a TEST label seen in training
    next_dropped_unseen: int  # TEST next products unseen in training: no method can rank them, so dropped
    intent_user: np.ndarray | None = None  # (Ni,) user of each point: the unit the intervals resample
    churn_user: np.ndarray | None = None  # (Nc,)
    next_user: np.ndarray | None = None  # (Nn,)

    @classmethod
    def of(cls, labels: Labels, encoder: EventEncoder) -> "ScoredPoints":
        intent_rows = np.flatnonzero((labels.intent_split == TEST) & (labels.intent >= 0))
        churn_keys = labels.churn.index[labels.churn["split"] == TEST].to_numpy()
        next_rows = next_query_rows(labels, encoder, TEST)
        users = labels.events["user_id"].to_numpy()
        return cls(
            intent_rows=intent_rows,
            intent_y=labels.intent[intent_rows].astype(np.int64),
            churn_keys=churn_keys,
            churn_y=labels.churn.loc[churn_keys, "label"].to_numpy(dtype=np.int64),
            next_rows=next_rows,
            next_dropped_unseen=int(((labels.next_split == TEST) & (labels.next_index >= 0)).sum()) - len(next_rows),
            intent_user=users[intent_rows],
            churn_user=labels.churn.loc[churn_keys, "user_id"].to_numpy(),
            next_user=users[next_rows],
        )

    def align(self, method: str, intent: pd.Series | None, churn: pd.Series | None,
              next_rank: pd.Series | np.ndarray | None) -> tuple[np.ndarray | None, ...]:
        """(intent probabilities, churn probabilities, next-product ranks) at these points; None where a
        method predicts nothing or there is no point. A point left without a prediction is an error."""
        def at(values, index: np.ndarray, what: str) -> np.ndarray | None:
            if values is None or not len(index):
                return None
            out = values.reindex(index).to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
            assert not np.isnan(out).any(), f"{method}: {what} missing for some test points"
            return out

        return (at(intent, self.intent_rows, "intent predictions"), at(churn, self.churn_keys, "churn predictions"),
                at(next_rank, self.next_rows, "next-product ranks"))
