"""Uplift metrics on cases whose answer is known by hand."""
from __future__ import annotations

import numpy as np
import pytest

from training.uplift_metrics import (
    observed_metrics,
    qini_curve,
    transformed_outcome_mse,
    true_metrics,
)


def test_qini_curve_by_hand() -> None:
    # ranked: (treated, bought), (control, no), (treated, no), (control, bought)
    score = np.array([4.0, 3.0, 2.0, 1.0])
    treated = np.array([1, 0, 1, 0], dtype=bool)
    outcome = np.array([1, 0, 0, 1])
    # Q(1) = 1 (no control yet: 0 subtracted); Q(2) = 1 - 0 * 1/1 = 1; Q(3) = 1 - 0 * 2/1 = 1; Q(4) = 1 - 1 * 2/2 = 0
    assert qini_curve(score, treated, outcome).tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    m = observed_metrics(score, treated, outcome)
    assert m["qini"] == pytest.approx(np.mean([0, 1, 1, 1, 0]) / 4)  # the random line is flat: Q(N) = 0
    assert m["uplift_at_10"] != m["uplift_at_10"]  # the top 10% (one point) holds one arm only: undefined


def test_the_true_ranking_beats_random_and_reversed_loses() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    tau = rng.normal(0.02, 0.05, n)
    treated = rng.random(n) < 0.5
    outcome = (rng.random(n) < 0.1 + treated * tau.clip(-0.1, 0.3)).astype(int)
    best, noise, worst = (observed_metrics(s, treated, outcome) for s in (tau, rng.random(n), -tau))
    assert best["qini"] > 0.005 > abs(noise["qini"]) and worst["qini"] < -0.005
    assert best["uplift_at_10"] > 0.05 > worst["uplift_at_10"]
    truth = true_metrics(tau, tau)
    assert truth["true_qini"] > true_metrics(rng.random(n), tau)["true_qini"]
    assert truth["true_uplift_at_10"] == pytest.approx(np.sort(tau)[-n // 10:].mean())


def test_a_constant_score_is_random_targeting() -> None:
    rng = np.random.default_rng(1)
    tau = rng.normal(0.0, 0.1, 5000)
    assert abs(true_metrics(np.zeros(5000), tau)["true_qini"]) < 0.003
    assert true_metrics(np.zeros(3), np.array([0.1, np.nan, 0.2])) == {}  # no oracle for every point: none


def test_the_transformed_outcome_mse_ranks_scores_by_their_error_against_the_true_uplift() -> None:
    """Its differences between scores estimate their differences in MSE against tau: no oracle needed."""
    rng = np.random.default_rng(2)
    n = 500_000
    tau = rng.choice([-0.05, 0.0, 0.1], n)
    treated = rng.random(n) < 0.4
    outcome = (rng.random(n) < 0.2 + treated * tau).astype(int)
    scores = {"truth": tau, "half": tau / 2, "constant": np.full(n, tau.mean()), "reversed": -tau}
    mse = {name: transformed_outcome_mse(s, treated, outcome) for name, s in scores.items()}
    assert mse["truth"] < mse["half"] < mse["constant"] < mse["reversed"]
    for name in ("half", "constant", "reversed"):
        gap = np.mean((scores[name] - tau) ** 2)
        assert mse[name] - mse["truth"] == pytest.approx(gap, rel=0.35), name  # about 3 sd of its noise
    assert np.isnan(transformed_outcome_mse(tau[:3], np.ones(3, dtype=bool), outcome[:3]))  # one arm: undefined

