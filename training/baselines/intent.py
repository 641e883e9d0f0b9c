"""Intent baseline: LightGBM on hand-made session features, at exactly the model's prediction points.

Every feature of row r reads only rows of the same user up to and including r (the table is sorted by
user, then time, so "earlier" means an earlier row): the session so far, and the user's sessions that
started before this one. Nothing later, not even a later event with the same timestamp, is read; the
tests check this by cutting the table at arbitrary points and comparing.

Sessions are assumed unique across users (the same assumption `training.labels` makes when it groups by
`session_id` alone).
"""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.baselines._common import US_PER_S, ts_us
from training.labels import TEST, TRAIN, VAL, Labels

# Funnel stages: how far a shopper has gone. Unlisted event types count as a view.
FUNNEL_STAGE = {"view": 1, "wishlist": 2, "cart": 3, "remove_from_cart": 3, "purchase": 4}

INTENT_FEATURES = (
    "time_in_session_s",  # seconds since the session's first event
    "seconds_since_prev_event",  # dwell before this event in the session (NaN at the first event)
    "events_so_far",
    "views_so_far",  # product views so far
    "distinct_products",  # distinct products seen so far (any event type)
    "distinct_categories",
    "price",  # price of the current event's product
    "price_mean",  # over the session's events so far that carry a price
    "price_spread",  # max - min
    "price_std",  # population std
    "price_rel",  # current price / session mean: is this product cheap or dear for this shopper?
    "funnel_depth",  # max stage reached so far (view 1 < wishlist 2 < cart 3 < purchase 4)
    "current_stage",  # stage of the current event
    "cart_adds",
    "cart_removes",
    "hour",  # UTC hour of day of the current event
    "weekday",
    "recency_s",  # seconds from the user's previous event before this session to its start (NaN: first)
    "prev_sessions",
    "prev_purchases",
    "prev_events",
)


def intent_features(events: pd.DataFrame) -> pd.DataFrame:
    """Features per event row (index = `events.index`), from that row and earlier rows only.

    `events` are canonical events sorted by user, then time (as `Labels.events`); the result has the
    columns `INTENT_FEATURES`, all float64. Vectorised: a million events take a few seconds.
    """
    n = len(events)
    if n == 0:
        return pd.DataFrame({c: np.zeros(0) for c in INTENT_FEATURES}, index=events.index)
    user = pd.factorize(events["user_id"])[0]
    ts = ts_us(events["ts"])
    same_user = user[1:] == user[:-1]
    if int(user.max()) != int(np.sum(~same_user)) or np.any(np.diff(ts)[same_user] < 0):
        raise ValueError("intent_features: events must be grouped by user and sorted by time within a user")
    sess = pd.factorize(events["session_id"])[0]
    etype = events["event_type"].astype("object").to_numpy()
    stage = pd.Series(etype).map(FUNNEL_STAGE).fillna(1).to_numpy(dtype=np.float64)
    price = pd.to_numeric(events["price"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    has_price = ~np.isnan(price)
    prod = pd.factorize(events["product_id"])[0]  # -1 for null
    cat = pd.factorize(events["category"])[0]

    def first_seen(codes: np.ndarray) -> np.ndarray:
        """1 at the first row of each (session, code) pair, 0 elsewhere and for null codes."""
        key = sess.astype(np.int64) * (int(codes.max()) + 2) + codes
        return ((~pd.Series(key).duplicated().to_numpy()) & (codes >= 0)).astype(np.float64)

    row = np.arange(n)
    per_session = pd.DataFrame({
        "one": np.ones(n),
        "view": (etype == "view").astype(np.float64),
        "cart": (etype == "cart").astype(np.float64),
        "remove": (etype == "remove_from_cart").astype(np.float64),
        "new_product": first_seen(prod),
        "new_category": first_seen(cat),
        "n_price": has_price.astype(np.float64),
        "sum_price": np.where(has_price, price, 0.0),
        "sum_price2": np.where(has_price, price * price, 0.0),
    })
    g = per_session.groupby(sess, sort=False)
    cum = g.cumsum()
    by_sess = pd.DataFrame({
        "row": row, "ts": ts, "stage": stage,
        "pmax": np.where(has_price, price, -np.inf), "pmin": np.where(has_price, price, np.inf),
    }).groupby(sess, sort=False)
    first_row = by_sess["row"].transform("min").to_numpy()
    stage_max = by_sess["stage"].cummax().to_numpy()
    pmax = by_sess["pmax"].cummax().to_numpy()
    pmin = by_sess["pmin"].cummin().to_numpy()
    prev_ts_in_session = by_sess["ts"].shift(1).to_numpy(dtype=np.float64, na_value=np.nan)

    n_price = cum["n_price"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_price > 0, cum["sum_price"].to_numpy() / n_price, np.nan)
        var = np.where(n_price > 0, cum["sum_price2"].to_numpy() / n_price - mean * mean, np.nan)
        std = np.sqrt(np.clip(var, 0.0, None))
        spread = np.where(n_price > 0, pmax - pmin, np.nan)
        price_rel = np.where(has_price & (mean > 0), price / mean, np.nan)

    # The user's history before this session: read at the row just before the session's first row, which
    # (rows sorted by user, then time) is the user's latest event before the session started.
    is_purchase = (etype == "purchase").astype(np.int64)
    is_session_start = (row == first_row).astype(np.int64)
    by_user = pd.DataFrame({"p": is_purchase, "s": is_session_start}).groupby(user, sort=False).cumsum()
    user_purchases = by_user["p"].to_numpy()
    user_sessions = by_user["s"].to_numpy()
    prev = first_row - 1
    has_prev = prev >= 0
    has_prev[has_prev] = user[prev[has_prev]] == user[first_row[has_prev]]
    prev_c = np.clip(prev, 0, None)
    user_start_row = pd.Series(row).groupby(user, sort=False).transform("min").to_numpy()

    dt = pd.to_datetime(ts, unit="us")
    out = pd.DataFrame({
        "time_in_session_s": (ts - ts[first_row]) / US_PER_S,
        "seconds_since_prev_event": (ts - prev_ts_in_session) / US_PER_S,
        "events_so_far": cum["one"].to_numpy(),
        "views_so_far": cum["view"].to_numpy(),
        "distinct_products": cum["new_product"].to_numpy(),
        "distinct_categories": cum["new_category"].to_numpy(),
        "price": price,
        "price_mean": mean,
        "price_spread": spread,
        "price_std": std,
        "price_rel": price_rel,
        "funnel_depth": stage_max,
        "current_stage": stage,
        "cart_adds": cum["cart"].to_numpy(),
        "cart_removes": cum["remove"].to_numpy(),
        "hour": dt.hour.to_numpy(dtype=np.float64),
        "weekday": dt.day_of_week.to_numpy(dtype=np.float64),
        "recency_s": np.where(has_prev, (ts[first_row] - ts[prev_c]) / US_PER_S, np.nan),
        "prev_sessions": (user_sessions[first_row] - 1).astype(np.float64),
        "prev_purchases": np.where(has_prev, user_purchases[prev_c], 0).astype(np.float64),
        "prev_events": (first_row - user_start_row).astype(np.float64),
    }, index=events.index)
    return out[list(INTENT_FEATURES)]


LGB_PARAMS = dict(
    n_estimators=2000,
    learning_rate=0.05,
    num_leaves=31,
    min_child_samples=20,
    subsample=0.8,
    subsample_freq=1,
    colsample_bytree=0.8,
    reg_lambda=1.0,
    deterministic=True,
    force_col_wise=True,
    num_threads=2,
    verbose=-1,
)
EARLY_STOPPING_ROUNDS = 50
ROUNDS_WITHOUT_VALIDATION = 200


def fit_predict_intent(labels: Labels, seed: int = 0, features: pd.DataFrame | None = None) -> pd.Series:
    """Purchase probability at every TEST intent prediction point (index = row in `labels.events`).

    Trained on TRAIN points, early-stopped on VAL points (log loss). With a single class in training the
    prediction is that class's rate (the base rate), since nothing can be learnt. `features` may be passed
    when already computed (`intent_features(labels.events)`).
    """
    X = intent_features(labels.events) if features is None else features
    X = X.reset_index(drop=True)
    y = labels.intent.astype(np.int64)
    is_point = labels.intent >= 0
    tr = np.flatnonzero(is_point & (labels.intent_split == TRAIN))
    va = np.flatnonzero(is_point & (labels.intent_split == VAL))
    te = np.flatnonzero(is_point & (labels.intent_split == TEST))
    if len(te) == 0:
        return pd.Series(np.zeros(0), index=pd.Index(te, name="row"), name="intent_lightgbm")
    if len(tr) == 0:
        raise ValueError("fit_predict_intent: no training intent labels")
    if len(np.unique(y[tr])) < 2:
        p = np.full(len(te), float(y[tr].mean()))
        return pd.Series(p, index=pd.Index(te, name="row"), name="intent_lightgbm")
    model = lgb.LGBMClassifier(**LGB_PARAMS, random_state=seed)
    if len(va) and len(np.unique(y[va])) == 2:
        model.fit(X.iloc[tr], y[tr], eval_X=(X.iloc[va],), eval_y=(y[va],), eval_metric="binary_logloss",
                  callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)])
    else:  # nothing to stop on: a fixed, modest number of rounds
        model.set_params(n_estimators=ROUNDS_WITHOUT_VALIDATION)
        model.fit(X.iloc[tr], y[tr])
    p = model.predict_proba(X.iloc[te])[:, 1]
    return pd.Series(p, index=pd.Index(te, name="row"), name="intent_lightgbm")
