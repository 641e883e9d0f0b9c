"""Uplift baseline: a two-model (T-) learner on the intent baseline's hand-made session features: one LightGBM
classifier per arm, fitted on that arm's training decision points (early-stopped on its validation ones);
the uplift is the difference of their purchase probabilities."""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.baselines.intent import (
    EARLY_STOPPING_ROUNDS,
    LGB_PARAMS,
    ROUNDS_WITHOUT_VALIDATION,
)


def fit_predict_t_learner(features: pd.DataFrame, treated: np.ndarray, outcome: np.ndarray, train: np.ndarray,
                          val: np.ndarray, score: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """features (N, F) at the decision points; returns p_treated - p_control at each index array of `score`."""
    X = features.reset_index(drop=True)
    arms = []
    for arm in (False, True):
        tr, va = train[treated[train] == arm], val[treated[val] == arm]
        if len(np.unique(outcome[tr])) < 2:  # nothing to learn: that arm's rate
            rate = float(outcome[tr].mean()) if len(tr) else 0.0
            arms.append(lambda rows, r=rate: np.full(len(rows), r))
            continue
        model = lgb.LGBMClassifier(**LGB_PARAMS, random_state=seed)
        if len(va) and len(np.unique(outcome[va])) == 2:
            model.fit(X.iloc[tr], outcome[tr], eval_X=(X.iloc[va],), eval_y=(outcome[va],), eval_metric="binary_logloss",
                      callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)])
        else:
            model.set_params(n_estimators=ROUNDS_WITHOUT_VALIDATION)
            model.fit(X.iloc[tr], outcome[tr])
        arms.append(lambda rows, m=model: m.predict_proba(X.iloc[rows])[:, 1])
    return [arms[1](rows) - arms[0](rows) for rows in score]


def fit_predict_on_true_uplift(features: pd.DataFrame, true_uplift: np.ndarray, train: np.ndarray, val: np.ndarray,
                               test: np.ndarray, seed: int = 0) -> np.ndarray:
    """A diagnostic, not a baseline (simulated data only): LightGBM regressing the oracle's true uplift on the
    same features. No outcome noise and no arms to contrast: what the events reveal of the effect at best,
    so the share of the oracle's Qini that any learner reading these features could reach."""
    X = features.reset_index(drop=True)
    model = lgb.LGBMRegressor(**{**LGB_PARAMS, "objective": "regression"}, random_state=seed)
    model.fit(X.iloc[train], true_uplift[train], eval_X=(X.iloc[val],), eval_y=(true_uplift[val],), eval_metric="l2",
              callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)])
    return model.predict(X.iloc[test])
