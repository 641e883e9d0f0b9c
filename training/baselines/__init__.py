"""Baselines reported beside the model on exactly the same prediction points (docs/DESIGN.md).

- intent: LightGBM on hand-made session features (`fit_predict_intent`);
- churn: logistic regression on RFM features (`fit_predict_churn`);
- next product: popularity and V-SKNN ranks (`popularity_ranks`, `vsknn_ranks`);
- the trivial training base rate (`intent_base_rate`, `churn_base_rate`).
"""
from training.baselines.churn import CHURN_FEATURES, churn_features, fit_predict_churn
from training.baselines.intent import INTENT_FEATURES, fit_predict_intent, intent_features
from training.baselines.next_item import (
    next_query_rows, popularity_ranks, popularity_scores, vsknn_ranks, vsknn_scores,
)
from training.baselines.trivial import churn_base_rate, intent_base_rate

__all__ = [
    "CHURN_FEATURES", "INTENT_FEATURES", "churn_base_rate", "churn_features", "fit_predict_churn",
    "fit_predict_intent", "intent_base_rate", "intent_features", "next_query_rows", "popularity_ranks",
    "popularity_scores", "vsknn_ranks", "vsknn_scores",
]
