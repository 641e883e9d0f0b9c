"""Ranking and binary metrics against hand-computed values, ties included."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.ranking import pessimistic_rank, rank_metrics
from training.metrics import binary_metrics, gain_at


def test_ties_count_against_the_model() -> None:
    scores = torch.tensor([[0.0, 0.0, 0.0, 0.0], [3.0, 1.0, 1.0, 0.5], [3.0, 2.0, 1.0, 0.5]])
    target = torch.tensor([2, 1, 1])
    # all equal: rank = catalogue size; tie with one other: rank 3 (not 2); strict: rank 2
    assert pessimistic_rank(scores, target).tolist() == [4, 3, 2]


def test_rank_metrics_hand_computed() -> None:
    m = rank_metrics(torch.tensor([1, 3, 25]), k=20)
    assert m["recall@20"] == pytest.approx(2 / 3)
    assert m["mrr@20"] == pytest.approx((1 + 1 / 3) / 3)
    assert m["ndcg@20"] == pytest.approx((1 + 1 / math.log2(4)) / 3)


def test_binary_metrics_hand_computed() -> None:
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.4, 0.1])
    m = binary_metrics("intent", y, p)
    assert m["intent_roc_auc"] == pytest.approx(0.75)  # 3 of 4 positive-negative pairs ordered right
    assert m["intent_pr_auc"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert m["intent_brier"] == pytest.approx(((0.1) ** 2 + 0.8**2 + 0.6**2 + 0.1**2) / 4)


def test_gain_breaks_ties_against_the_model() -> None:
    y = np.array([0, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    assert gain_at(y, np.full(10, 0.5), 0.1) == 0.0  # constant scores find nothing in the top 10%
    assert gain_at(y, np.arange(10)[::-1] / 10, 0.2) == 1.0


def test_single_class_gives_no_auc() -> None:
    assert "intent_roc_auc" not in binary_metrics("intent", np.zeros(5), np.linspace(0, 1, 5))


def test_intervals_resample_users_and_cover_the_estimate() -> None:
    """A metric's 95% interval holds its value; when a user's points move together, resampling users (not
    points) gives the honest, wider interval."""
    import numpy as np

    from training.metrics import next_metrics

    ranks = np.repeat(np.random.default_rng(0).integers(1, 60, size=20), 100)  # 20 shoppers, 100 alike points each
    many = next_metrics(ranks, users=np.arange(2000))  # as if every point were its own shopper
    few = next_metrics(ranks, users=np.repeat(np.arange(20), 100))
    for m in (many, few):
        assert m["next_recall_at_20_ci_low"] <= m["next_recall_at_20"] <= m["next_recall_at_20_ci_high"]
    width = lambda m: m["next_mrr_at_20_ci_high"] - m["next_mrr_at_20_ci_low"]
    assert width(few) > 2 * width(many)


def test_too_small_a_split_is_named_in_a_warning() -> None:
    from training.intervals import warn_if_too_small

    assert warn_if_too_small("test", "next", 5000) is None
    assert "test set too small to rank methods on next" in warn_if_too_small("test", "next", 12)
    assert "validation" in warn_if_too_small("validation", "intent", 5000, n_positives=3)
