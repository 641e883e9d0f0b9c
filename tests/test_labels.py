"""Leakage: labels and inputs never read past their split; task definitions as docs/DESIGN.md states them."""
from __future__ import annotations

import numpy as np
import pandas as pd

from models.encoding import EventEncoder
from training.config import LabelConfig, SplitConfig
from training.labels import NO_SPLIT, TEST, TRAIN, VAL, churn_cutoffs, make_labels, split_dates
from training.windows import build_split
from tests.factories import T0, events_frame, random_events

DAY = 24 * 60  # minutes


def labelled(rows, val_days=2.0, test_days=2.0, horizon=2.0, lookback=5.0):
    events = events_frame(rows)
    dates = split_dates(events, SplitConfig(val_days=val_days, test_days=test_days))
    return make_labels(events, dates, LabelConfig(churn_horizon_days=horizon, churn_lookback_days=lookback,
                                                  churn_cutoff_step_days=1.0))


def test_intent_points_stop_at_the_first_purchase() -> None:
    rows = [("a", "s1", 0, "view", "p1"), ("a", "s1", 1, "cart", "p1"), ("a", "s1", 2, "purchase", "p1"),
            ("a", "s1", 3, "view", "p2"), ("a", "s2", 60, "view", "p3"), ("a", "s2", 61, "view", "p4"),
            ("z", "z1", 10 * DAY, "view", "p1")]
    lab = labelled(rows)
    assert lab.intent.tolist()[:6] == [1, 1, -1, -1, 0, 0]


def test_sessions_straddling_a_boundary_belong_to_no_split() -> None:
    # data spans days 0..10: test from day 8, validation from day 6
    rows = [("a", "s1", 6 * DAY - 5, "view", "p1"), ("a", "s1", 6 * DAY + 5, "purchase", "p1"),
            ("b", "s2", 1 * DAY, "view", "p1"), ("b", "s3", 7 * DAY, "view", "p2"),
            ("c", "s4", 9 * DAY, "view", "p1"), ("z", "z1", 10 * DAY, "view", "p1")]
    lab = labelled(rows)
    by_session = dict(zip(lab.events["session_id"], lab.intent_split))
    assert by_session["s1"] == NO_SPLIT and by_session["s2"] == TRAIN
    assert by_session["s3"] == VAL and by_session["s4"] == TEST
    # the next-product label of s1's first event is read at the second event's time: validation
    first = lab.events.index[(lab.events["session_id"] == "s1")][0]
    assert lab.next_split[first] == VAL


def test_training_churn_cutoffs_leave_a_horizon_before_validation() -> None:
    events = random_events(n_users=10, days=30)
    dates = split_dates(events, SplitConfig(val_days=5, test_days=5))
    cfg = LabelConfig(churn_horizon_days=4, churn_lookback_days=7)
    for cutoff, split in churn_cutoffs(dates, cfg):
        if split == TRAIN:
            assert cutoff + pd.Timedelta(days=4) <= dates.val_start
    lab = make_labels(events, dates, cfg)
    assert set(lab.churn["split"]) == {TRAIN, VAL, TEST}


def test_churn_label_reads_only_the_horizon_after_the_cutoff() -> None:
    # test cutoff at day 8 (end day 10), horizon 2 days: a purchase at day 9 = not churned
    rows = [("a", "a1", 7 * DAY, "purchase", "p1"), ("a", "a2", 9 * DAY, "purchase", "p1"),
            ("b", "b1", 7 * DAY, "purchase", "p1"), ("b", "b2", 10 * DAY + 30, "view", "p1"),
            ("c", "c1", 7 * DAY + 60, "purchase", "p2"), ("z", "z0", 0, "view", "p1"),
            ("z", "z1", 10 * DAY + 60, "view", "p1")]
    lab = labelled(rows)
    test = lab.churn[lab.churn["split"] == TEST].set_index("user_id")
    assert test.loc["a", "label"] == 0 and test.loc["b", "label"] == 1 and test.loc["c", "label"] == 1
    # the model reads the user's state at the last event before the cutoff
    assert lab.events.loc[test.loc["a", "row"], "ts"] == T0 + pd.Timedelta(days=7)


def test_training_inputs_never_include_validation_time() -> None:
    events = random_events(n_users=20, days=30)
    dates = split_dates(events, SplitConfig(val_days=5, test_days=5))
    lab = make_labels(events, dates, LabelConfig(churn_horizon_days=3, churn_lookback_days=7))
    enc = EventEncoder.fit(lab.events)
    arrays = build_split(lab, enc.encode(lab.events), TRAIN, window=10)
    assert (lab.events["ts"].iloc[arrays.event_row] < dates.val_start).all()
    # every next-product / intent label kept for training is fully known before validation starts
    rows = arrays.event_row[arrays.next_product >= 0]
    assert (lab.events["ts"].to_numpy()[lab.next_index[rows]] < dates.val_start).all()

    # Flipping every event after the validation start changes nothing the training split sees.
    late = events["ts"] >= dates.val_start
    flipped = events.copy()
    flipped.loc[late, "event_type"] = "purchase"
    flipped.loc[late, "product_id"] = "p0"
    lab2 = make_labels(flipped, dates, LabelConfig(churn_horizon_days=3, churn_lookback_days=7))
    arrays2 = build_split(lab2, enc.encode(lab2.events), TRAIN, window=10)
    for name in arrays.features:
        np.testing.assert_array_equal(arrays.features[name], arrays2.features[name])
    np.testing.assert_array_equal(arrays.intent, arrays2.intent)
    np.testing.assert_array_equal(arrays.next_product, arrays2.next_product)
    # churn labels of training cutoffs may read up to val_start, never beyond
    np.testing.assert_array_equal(arrays.churn_label, arrays2.churn_label)


def test_clicks_without_purchases_give_no_churn_rows_and_still_split() -> None:
    rows = [("a", "s1", 0, "view", "p1"), ("a", "s1", 1, "view", "p2"), ("b", "s2", 9 * DAY, "view", "p1"),
            ("b", "s2", 9 * DAY + 1, "view", "p3"), ("z", "z1", 10 * DAY, "view", "p1")]
    lab = labelled(rows)
    assert lab.churn.empty and lab.churn["row"].dtype == np.int64
    enc = EventEncoder.fit(lab.events)
    arrays = build_split(lab, enc.encode(lab.events), TEST, window=10)
    assert len(arrays.churn_row) == 0 and (arrays.next_product >= 0).sum() == 1
