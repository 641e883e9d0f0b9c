"""Churn baseline: logistic regression on RFM features at each churn cutoff, from events strictly before it.

Recency, frequency and monetary value are the classic customer-value features; with events per window and
tenure they make the baseline a churn model must beat. An event at exactly the cutoff is not read
(`ts < cutoff`), matching the label, which looks at (cutoff, cutoff + horizon].
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from training.baselines._common import US_PER_DAY, moment_us, ts_us
from training.labels import TEST, TRAIN, Labels

CHURN_FEATURES = (
    "recency_days",  # since the last purchase (NaN: none before the cutoff)
    "purchases_lookback",  # purchases in [cutoff - lookback, cutoff)
    "purchases_total",  # purchases before the cutoff
    "monetary_sum",  # sum of purchase prices before the cutoff (missing prices count 0)
    "monetary_mean",  # mean purchase price (NaN: no priced purchase)
    "monetary_sum_lookback",
    "days_since_last_event",  # (NaN: no event before the cutoff)
    "events_7d",
    "events_28d",
    "tenure_days",  # since the first event (NaN: no event before the cutoff)
)


def churn_features(events: pd.DataFrame, queries: pd.DataFrame, lookback_days: float) -> pd.DataFrame:
    """RFM features per query (index = `queries.index`) from `events` with ts < the query's cutoff.

    `queries` needs `user_id` and `cutoff` columns (e.g. `Labels.churn`); `events` are canonical events in
    any order. Loops over distinct cutoffs only (a few dozen), each pass vectorised over all events.
    """
    q_users = queries["user_id"].to_numpy()
    out = pd.DataFrame(np.nan, index=queries.index, columns=list(CHURN_FEATURES), dtype=np.float64)
    if len(queries) == 0:
        return out
    ucode, uniques = pd.factorize(events["user_id"])
    ts = ts_us(events["ts"])
    order = np.lexsort((ts, ucode))  # by user, then time: first/last per user are group ends
    ucode, ts = ucode[order], ts[order]
    is_purchase = (events["event_type"].to_numpy()[order] == "purchase")
    price = pd.to_numeric(events["price"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)[order]
    priced = is_purchase & ~np.isnan(price)
    price0 = np.where(np.isnan(price), 0.0, price)
    n_users = len(uniques)
    q_code = pd.Index(uniques).get_indexer(pd.Index(q_users, dtype="object"))
    known = q_code >= 0
    lookback_us = int(round(lookback_days * US_PER_DAY))

    def count(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        w = None if weights is None else weights[mask]
        return np.bincount(ucode[mask], weights=w, minlength=n_users).astype(np.float64)

    def last_ts(mask: np.ndarray) -> np.ndarray:
        idx = np.flatnonzero(mask)
        codes = ucode[idx]
        end = idx[np.r_[codes[1:] != codes[:-1], True]] if len(idx) else idx
        t = np.full(n_users, np.nan)
        t[ucode[end]] = ts[end]
        return t

    first_event = np.full(n_users, np.nan)
    starts = np.flatnonzero(np.r_[True, ucode[1:] != ucode[:-1]]) if len(ucode) else np.zeros(0, dtype=np.int64)
    first_event[ucode[starts]] = ts[starts]

    cutoffs = queries["cutoff"].map(moment_us).to_numpy(dtype=np.int64)
    for T in np.unique(cutoffs):
        sel = np.flatnonzero((cutoffs == T) & known)
        if len(sel) == 0:
            continue
        before = ts < T
        in_lookback = before & (ts >= T - lookback_us)
        u = q_code[sel]
        n_purch = count(before & is_purchase)[u]
        n_priced = count(before & priced)[u]
        m_sum = count(before & is_purchase, price0)[u]
        last_p, last_e = last_ts(before & is_purchase)[u], last_ts(before)[u]
        has_event = ~np.isnan(last_e)
        with np.errstate(invalid="ignore", divide="ignore"):
            cols = {
                "recency_days": (T - last_p) / US_PER_DAY,
                "purchases_lookback": count(in_lookback & is_purchase)[u],
                "purchases_total": n_purch,
                "monetary_sum": m_sum,
                "monetary_mean": np.where(n_priced > 0, m_sum / n_priced, np.nan),
                "monetary_sum_lookback": count(in_lookback & is_purchase, price0)[u],
                "days_since_last_event": (T - last_e) / US_PER_DAY,
                "events_7d": count(before & (ts >= T - 7 * US_PER_DAY))[u],
                "events_28d": count(before & (ts >= T - 28 * US_PER_DAY))[u],
                "tenure_days": np.where(has_event, (T - first_event[u]) / US_PER_DAY, np.nan),
            }
        out.iloc[sel] = np.column_stack([cols[c] for c in CHURN_FEATURES])
    # Users absent from `events` have no history: counts are 0, times stay NaN.
    counts = [c for c in CHURN_FEATURES if c.startswith(("purchases", "monetary_sum", "events"))]
    out[counts] = out[counts].fillna(0.0)
    return out


def _log1p_nonneg(X: np.ndarray) -> np.ndarray:
    return np.log1p(np.clip(X, 0.0, None))


def churn_pipeline(seed: int = 0) -> Pipeline:
    """log1p -> median imputation (with missing-value indicators) -> standard scaling -> logistic regression."""
    return Pipeline([
        ("log1p", FunctionTransformer(_log1p_nonneg, feature_names_out="one-to-one")),
        ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
        ("scale", StandardScaler()),
        ("lr", LogisticRegression(C=1.0, max_iter=2000, random_state=seed)),
    ])


def fit_predict_churn(labels: Labels, lookback_days: float, seed: int = 0) -> pd.Series:
    """Churn probability for every TEST churn example (index = `labels.churn` index).

    Fit on TRAIN churn examples only. With a single class in training the prediction is that class's rate.
    `lookback_days` should be the labels' `churn_lookback_days` (the window that made a customer active).
    """
    churn = labels.churn
    split = churn["split"].to_numpy()
    test = churn.index[split == TEST]
    if len(test) == 0:
        return pd.Series(np.zeros(0), index=test, name="churn_rfm_lr")
    train = churn.index[split == TRAIN]
    if len(train) == 0:
        raise ValueError("fit_predict_churn: no training churn examples")
    X = churn_features(labels.events, churn.loc[train.append(test)], lookback_days)
    y = churn.loc[train, "label"].to_numpy(dtype=np.int64)
    if len(np.unique(y)) < 2:
        return pd.Series(np.full(len(test), float(y.mean())), index=test, name="churn_rfm_lr")
    model = churn_pipeline(seed).fit(X.loc[train].to_numpy(), y)
    p = model.predict_proba(X.loc[test].to_numpy())[:, 1]
    return pd.Series(p, index=test, name="churn_rfm_lr")
