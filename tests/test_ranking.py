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
