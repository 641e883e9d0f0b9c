"""The trivial baseline: always predict the training base rate. Any model must beat it to mean anything."""
from __future__ import annotations

import numpy as np
import pandas as pd

from training.labels import TEST, TRAIN, Labels


def intent_base_rate(labels: Labels) -> pd.Series:
    """The TRAIN purchase rate at every TEST intent prediction point (index = row in `labels.events`)."""
    is_point = labels.intent >= 0
    train = labels.intent[is_point & (labels.intent_split == TRAIN)]
    test = np.flatnonzero(is_point & (labels.intent_split == TEST))
    rate = float(train.mean()) if len(train) else float("nan")
    return pd.Series(np.full(len(test), rate), index=pd.Index(test, name="row"), name="intent_base_rate")


def churn_base_rate(labels: Labels) -> pd.Series:
    """The TRAIN churn rate for every TEST churn example (index = `labels.churn` index)."""
    split = labels.churn["split"].to_numpy()
    train = labels.churn.loc[split == TRAIN, "label"].to_numpy(dtype=np.float64)
    test = labels.churn.index[split == TEST]
    rate = float(train.mean()) if len(train) else float("nan")
    return pd.Series(np.full(len(test), rate), index=test, name="churn_base_rate")
