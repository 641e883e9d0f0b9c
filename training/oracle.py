"""The simulator's ground truth as a method: the best score achievable on each task (simulated data only).

The simulator writes, at every prediction point, the true probability that the session converts, the
true churn probability at each midnight cutoff, and the top of the true next-product distribution.
Scoring those on the same test points bounds what any model can reach; model / oracle is reported.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from events.source import DatasetSource
from training.labels import TEST, Labels

log = logging.getLogger(__name__)
BEYOND_TOP = 10**9  # the oracle file keeps only its top items; a target outside them counts as a miss


def oracle_predictions(source: DatasetSource, labels: Labels, horizon_days: float
                       ) -> tuple[pd.Series | None, pd.Series | None, pd.Series | None] | None:
    files = {name: source.oracle_file(f"oracle_{name}.parquet") for name in ("intent", "churn", "next")}
    if not any(files.values()):
        return None
    keys = labels.events[["session_id", "step"]].reset_index().rename(columns={"index": "row"})
    return (
        _intent(files["intent"], keys, labels),
        _churn(files["churn"], labels, horizon_days),
        _next(files["next"], keys, labels),
    )


def _intent(path, keys: pd.DataFrame, labels: Labels) -> pd.Series | None:
    if path is None:
        return None
    oracle = pd.read_parquet(path, columns=["session_id", "step", "p_convert"])
    rows = np.flatnonzero((labels.intent_split == TEST) & (labels.intent >= 0))
    joined = keys.iloc[rows].merge(oracle, on=["session_id", "step"], how="left")
    return pd.Series(joined["p_convert"].to_numpy(), index=joined["row"].to_numpy())


def _churn(path, labels: Labels, horizon_days: float) -> pd.Series | None:
    if path is None:
        return None
    oracle = pd.read_parquet(path)
    oracle = oracle[np.isclose(oracle["horizon_days"].astype(float), horizon_days)]
    if oracle.empty:
        log.info("no churn oracle for a %.1f-day horizon; churn oracle skipped", horizon_days)
        return None
    test = labels.churn[labels.churn["split"] == TEST].reset_index()
    oracle = oracle.assign(cutoff=pd.to_datetime(oracle["cutoff"], utc=True))
    joined = test.assign(cutoff=pd.to_datetime(test["cutoff"], utc=True)).merge(
        oracle[["user_id", "cutoff", "p_churn"]], on=["user_id", "cutoff"], how="left")
    if joined["p_churn"].isna().any():
        log.info("churn oracle lacks %d test cutoffs; churn oracle skipped", int(joined["p_churn"].isna().sum()))
        return None
    return pd.Series(joined["p_churn"].to_numpy(), index=joined["index"].to_numpy())


def _next(path, keys: pd.DataFrame, labels: Labels) -> pd.Series | None:
    if path is None:
        return None
    oracle = pd.read_parquet(path, columns=["session_id", "step", "top_products"])
    rows = np.flatnonzero((labels.next_split == TEST) & (labels.next_index >= 0))
    joined = keys.iloc[rows].merge(oracle, on=["session_id", "step"], how="left")
    target = labels.events["product_id"].to_numpy()[labels.next_index[joined["row"].to_numpy()]]
    ranks = np.full(len(joined), BEYOND_TOP, dtype=np.int64)
    for i, (top, t) in enumerate(zip(joined["top_products"], target)):
        if top is not None:
            hits = np.flatnonzero(np.asarray(top) == t)
            if len(hits):
                ranks[i] = hits[0] + 1
    return pd.Series(ranks, index=joined["row"].to_numpy())
