"""Baselines: no feature reads a later event, ranks follow the model's tie rule, and the learners learn."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from models.encoding import EventEncoder
from training.baselines import (
    CHURN_FEATURES, INTENT_FEATURES, churn_base_rate, churn_features, fit_predict_churn, fit_predict_intent,
    intent_base_rate, intent_features, next_query_rows, popularity_ranks, vsknn_ranks, vsknn_scores,
)
from training.config import LabelConfig, SplitConfig
from training.labels import TEST, TRAIN, VAL, Labels, make_labels, naive_utc, split_dates

T0 = pd.Timestamp("2024-01-01", tz="UTC")
COLUMNS = ("user_id", "session_id", "ts", "event_type", "product_id", "category", "brand", "price")


def frame(rows: list[tuple]) -> pd.DataFrame:
    """Canonical events from (user, session, minutes after T0, event_type, product[, price[, category]])."""
    out = []
    for r in rows:
        user, session, minutes, etype, product = r[:5]
        price = r[5] if len(r) > 5 else 10.0
        category = r[6] if len(r) > 6 else f"cat{product}"
        out.append((user, session, T0 + pd.Timedelta(minutes=minutes), etype, product, category, "b", price))
    df = pd.DataFrame(out, columns=list(COLUMNS))
    return df.sort_values(["user_id", "ts"], kind="stable").reset_index(drop=True)


def labels_of(events: pd.DataFrame, val_days: float = 7, test_days: float = 7, horizon: float = 7,
              lookback: float = 14) -> Labels:
    dates = split_dates(events, SplitConfig(val_days=val_days, test_days=test_days))
    return make_labels(events, dates, LabelConfig(churn_horizon_days=horizon, churn_lookback_days=lookback))


def encoder_of(labels: Labels) -> EventEncoder:
    ev = labels.events
    train = ev[naive_utc(ev["ts"]) < np.datetime64(labels.dates.val_start.tz_localize(None), "us")]
    return EventEncoder.fit(train)


def synthetic(n_users: int = 300, days: int = 60, seed: int = 0, n_products: int = 40) -> pd.DataFrame:
    """Sessions of views; a session with a cart converts with 70% odds, one without with 3%."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        loyal = rng.random() < 0.5
        t = rng.uniform(0, 3) * 1440.0
        s = 0
        while t < days * 1440:
            n = int(rng.integers(1, 8))
            carted = rng.random() < 0.35
            buys = rng.random() < (0.7 if carted else 0.03)
            for i in range(n):
                p = int(rng.integers(0, n_products))
                rows.append((f"u{u}", f"u{u}s{s}", t, "view", f"p{p}", float(5 + 3 * p)))
                t += float(rng.uniform(0.2, 5))
                if carted and i == n // 2:
                    rows.append((f"u{u}", f"u{u}s{s}", t, "cart", f"p{p}", float(5 + 3 * p)))
                    t += float(rng.uniform(0.2, 3))
            if buys:
                rows.append((f"u{u}", f"u{u}s{s}", t, "purchase", f"p{p}", float(5 + 3 * p)))
            s += 1
            # Loyal users keep coming back every few days; the others fade away.
            t += (rng.exponential(3.0) if loyal else rng.exponential(3.0 + t / 1440.0 * 2)) * 1440.0
    return frame(rows)


# ----------------------------------------------------------------------------------------------- intent


def test_intent_features_never_read_later_events():
    events = synthetic(n_users=60, days=30, seed=1)
    full = intent_features(events)
    assert list(full.columns) == list(INTENT_FEATURES)
    ts = events["ts"]
    # Cut the table at arbitrary moments and rows: what remains must not see any difference.
    cuts = [events[ts <= ts.quantile(q)] for q in (0.1, 0.37, 0.5, 0.81)]
    cuts += [events.iloc[: r + 1] for r in (0, 7, len(events) // 3, len(events) - 2)]
    for cut in cuts:
        pd.testing.assert_frame_equal(intent_features(cut), full.loc[cut.index])


def test_intent_features_by_hand():
    events = frame([
        ("a", "a1", 0, "view", "x", 10.0, "shoes"),
        ("a", "a1", 1, "view", "y", 30.0, "shoes"),
        ("a", "a1", 3, "cart", "y", 30.0, "shoes"),
        ("a", "a1", 4, "remove_from_cart", "y", 30.0, "shoes"),
        ("a", "a1", 6, "view", "z", None, "bags"),
        ("a", "a1", 7, "purchase", "x", 10.0, "shoes"),
        ("a", "a2", 100, "view", "x", 20.0, "shoes"),
        ("b", "b1", 5, "view", "x", 10.0, "shoes"),
    ])
    f = intent_features(events)
    a1 = f.iloc[:6]
    assert a1["events_so_far"].tolist() == [1, 2, 3, 4, 5, 6]
    assert a1["time_in_session_s"].tolist() == [0, 60, 180, 240, 360, 420]
    assert a1["views_so_far"].tolist() == [1, 2, 2, 2, 3, 3]
    assert a1["distinct_products"].tolist() == [1, 2, 2, 2, 3, 3]
    assert a1["distinct_categories"].tolist() == [1, 1, 1, 1, 2, 2]
    assert a1["cart_adds"].tolist() == [0, 0, 1, 1, 1, 1]
    assert a1["cart_removes"].tolist() == [0, 0, 0, 1, 1, 1]
    assert a1["funnel_depth"].tolist() == [1, 1, 3, 3, 3, 4]
    assert a1["price_spread"].tolist() == [0, 20, 20, 20, 20, 20]
    assert a1["price_mean"].iloc[1] == 20 and np.isnan(a1["price"].iloc[4])
    assert a1["price_std"].iloc[1] == pytest.approx(10.0)
    assert a1["price_rel"].iloc[1] == pytest.approx(1.5)
    assert np.isnan(a1["recency_s"]).all() and (a1["prev_sessions"] == 0).all()
    a2 = f.iloc[6]
    assert a2["recency_s"] == 93 * 60 and a2["prev_sessions"] == 1 and a2["prev_purchases"] == 1
    assert a2["prev_events"] == 6 and a2["events_so_far"] == 1 and a2["cart_adds"] == 0
    b1 = f.iloc[7]  # another user: nothing of user a leaks in
    assert np.isnan(b1["recency_s"]) and b1["prev_purchases"] == 0 and b1["prev_sessions"] == 0


def test_a_later_cart_or_session_changes_nothing_earlier():
    base = [
        ("a", "a1", 0, "view", "x"), ("a", "a1", 2, "view", "y"),
        ("a", "a2", 60, "view", "x"), ("a", "a2", 61, "view", "y"),
    ]
    later = [("a", "a1", 3, "cart", "y"), ("a", "a1", 4, "purchase", "y"),  # after row 1 of a1
             ("a", "a3", 200, "view", "z")]  # a later session
    f0 = intent_features(frame(base))
    f1 = intent_features(frame(base + later))
    keep = f1.index[[0, 1, 4, 5]]  # base rows in the longer table (a1's new rows sit at 2, 3)
    assert f1.loc[keep, "cart_adds"].tolist() == [0, 0, 0, 0]
    np.testing.assert_array_equal(f1.loc[keep].drop(columns=["recency_s", "prev_purchases", "prev_events"]),
                                  f0.drop(columns=["recency_s", "prev_purchases", "prev_events"]))
    # a2 starts after a1's purchase and cart: recency and history move, as they must (they are earlier).
    assert f1.loc[keep[2], "prev_purchases"] == 1 and f1.loc[keep[2], "recency_s"] == 56 * 60
    assert f0.loc[2, "recency_s"] == 58 * 60
    # The later session a3 changes nothing in a1 or a2.
    f2 = intent_features(frame(base + later[:2]))
    pd.testing.assert_frame_equal(f2, f1.iloc[:6])


def test_intent_lightgbm_beats_base_rate_and_is_deterministic():
    labels = labels_of(synthetic())
    p = fit_predict_intent(labels, seed=3)
    test_rows = np.flatnonzero((labels.intent >= 0) & (labels.intent_split == TEST))
    np.testing.assert_array_equal(p.index.to_numpy(), test_rows)
    assert ((p >= 0) & (p <= 1)).all()
    y = labels.intent[test_rows]
    base = intent_base_rate(labels)
    assert base.index.equals(p.index)
    assert roc_auc_score(y, p) > 0.7
    assert log_loss(y, p) < log_loss(y, base) - 0.02
    again = fit_predict_intent(labels, seed=3)
    pd.testing.assert_series_equal(p, again)


def test_intent_features_scale():
    """A million-event table must take seconds; 200k events here keep the test fast."""
    import time

    rng = np.random.default_rng(0)
    n = 200_000
    session = np.sort(rng.integers(0, n // 8, n))
    events = pd.DataFrame({
        "user_id": (session // 3).astype(str), "session_id": session.astype(str),
        "ts": T0 + pd.to_timedelta(np.arange(n) * 10, unit="s"),
        "event_type": rng.choice(["view", "view", "view", "cart", "remove_from_cart", "purchase"], n),
        "product_id": rng.integers(0, 5000, n).astype(str), "category": rng.integers(0, 50, n).astype(str),
        "brand": "b", "price": rng.uniform(1, 100, n),
    })
    start = time.perf_counter()
    f = intent_features(events)
    assert len(f) == n and time.perf_counter() - start < 5.0


# ----------------------------------------------------------------------------------------------- churn


def test_churn_features_read_only_before_the_cutoff():
    cutoff = T0 + pd.Timedelta(days=30)
    minutes = lambda d: d * 1440  # noqa: E731
    base = [
        ("a", "a1", minutes(1), "view", "x", 5.0), ("a", "a1", minutes(1) + 1, "purchase", "x", 5.0),
        ("a", "a2", minutes(20), "purchase", "y", 15.0), ("a", "a3", minutes(27), "view", "y", 15.0),
    ]
    later = [("a", "a4", minutes(30), "purchase", "z", 99.0),  # exactly at the cutoff: not before it
             ("a", "a5", minutes(31), "purchase", "z", 99.0), ("b", "b1", minutes(31), "purchase", "z", 9.0)]
    queries = pd.DataFrame({"user_id": ["a", "b", "nobody"], "cutoff": [cutoff] * 3}, index=[10, 11, 12])
    f0 = churn_features(frame(base), queries, lookback_days=14)
    f1 = churn_features(frame(base + later), queries, lookback_days=14)
    pd.testing.assert_frame_equal(f0.loc[[10]], f1.loc[[10]])
    assert list(f1.columns) == list(CHURN_FEATURES) and f1.index.tolist() == [10, 11, 12]
    a = f1.loc[10]
    assert a["recency_days"] == pytest.approx(10.0) and a["days_since_last_event"] == pytest.approx(3.0)
    assert a["purchases_total"] == 2 and a["purchases_lookback"] == 1
    assert a["monetary_sum"] == 20 and a["monetary_mean"] == 10 and a["monetary_sum_lookback"] == 15
    assert a["events_7d"] == 1 and a["events_28d"] == 2 and a["tenure_days"] == pytest.approx(29.0)
    for user in (11, 12):  # b's only event is after the cutoff; "nobody" has no events at all
        assert f1.loc[user, "purchases_total"] == 0 and np.isnan(f1.loc[user, "recency_days"])


def test_churn_logistic_regression_probabilities_aligned():
    labels = labels_of(synthetic(n_users=400, days=70, seed=2))
    p = fit_predict_churn(labels, lookback_days=14, seed=0)
    test = labels.churn.index[labels.churn["split"] == TEST]
    assert len(test) > 20 and p.index.equals(test)
    assert ((p >= 0) & (p <= 1)).all() and not p.isna().any()
    assert churn_base_rate(labels).index.equals(test)
    assert (labels.churn["split"] == TRAIN).sum() > 0 and (labels.churn["split"] == VAL).sum() > 0


# ----------------------------------------------------------------------------------------------- next product


def next_product_case() -> tuple[Labels, EventEncoder]:
    """Training window: p1 x3, p2 x2, p3 x2, p4 x1 (+ q, b, c for V-SKNN); test sessions query them."""
    day = 1440
    rows = [
        ("u1", "s1", 0, "view", "p1"), ("u1", "s1", 1, "view", "p1"), ("u1", "s1", 2, "view", "p1"),
        ("u1", "s1", 3, "view", "p2"), ("u1", "s1", 4, "view", "p2"),
        ("u2", "s2", day, "view", "p3"), ("u2", "s2", day + 1, "view", "p3"), ("u2", "s2", day + 2, "view", "p4"),
        # V-SKNN material: older S3 = [b, c], newer S4 = [q, c], unrelated S5 = [p1, p2]
        ("u3", "s3", 2 * day, "view", "b"), ("u3", "s3", 2 * day + 1, "view", "c"),
        ("u4", "s4", 3 * day, "view", "q"), ("u4", "s4", 3 * day + 1, "view", "c"),
        ("u5", "s5", 4 * day, "view", "p1"), ("u5", "s5", 4 * day + 1, "view", "p2"),
        ("u9", "s9", 5 * day, "view", "p1"),  # pads the training window
        # Test window (starts after day 20): queries are every row followed by another row of its session.
        ("t1", "t1", 25 * day, "view", "p3"), ("t1", "t1", 25 * day + 1, "view", "p1"),
        ("t1", "t1", 25 * day + 2, "view", "p2"), ("t1", "t1", 25 * day + 3, "view", "p4"),
        ("t2", "t2", 26 * day, "view", "q"), ("t2", "t2", 26 * day + 1, "view", "b"),
        ("t2", "t2", 26 * day + 2, "view", "c"), ("t2", "t2", 26 * day + 3, "view", "new"),
        ("t3", "t3", 28 * day, "view", "p1"),
    ]
    labels = labels_of(frame(rows), val_days=4, test_days=5, horizon=2, lookback=2)
    return labels, encoder_of(labels)


def test_popularity_ranks_count_ties_against():
    labels, encoder = next_product_case()
    ev = labels.events
    rows = next_query_rows(labels, encoder)
    nxt = ev["product_id"].to_numpy()[labels.next_index[rows]]
    assert nxt.tolist() == ["p1", "p2", "p4", "b", "c"]  # t2's "new" is unknown to the encoder: dropped
    ranks = popularity_ranks(labels, encoder, rows)
    # Training-window counts: p1 5, p2 3, p3 2, c 2, p4 1, b 1, q 1. c ties p3 -> rank 4 (p1, p2, p3, c);
    # p4 and b tie with q -> rank 7, the whole catalogue.
    assert ranks.tolist() == [1, 2, 7, 7, 4]
    assert ranks.dtype == np.int64


def test_unknown_next_product_is_the_callers_to_drop():
    labels, encoder = next_product_case()
    unk_row = int(np.flatnonzero(labels.events["product_id"].to_numpy() == "new")[0]) - 1
    with pytest.raises(AssertionError, match="dropped by the caller"):
        popularity_ranks(labels, encoder, np.array([unk_row]))
    with pytest.raises(AssertionError, match="dropped by the caller"):
        vsknn_ranks(labels, encoder, np.array([unk_row]))


def test_vsknn_neighbours_next_item_ranks_first():
    labels, encoder = next_product_case()
    ev = labels.events
    # After t2's [q, b] the next item is c: S4 (shares q) and S3 (shares b) both hold c, which popularity
    # ranks only 4th.
    row = int(np.flatnonzero((ev["session_id"] == "t2").to_numpy())[1])
    assert ev["product_id"].iloc[labels.next_index[row]] == "c"
    assert vsknn_ranks(labels, encoder, np.array([row])).tolist() == [1]
    assert popularity_ranks(labels, encoder, np.array([row])).tolist() == [4]
    # With one neighbour only the more similar session votes: S3 = [b, c] shares b, the latest item
    # (weight 1), S4 = [q, c] shares q (weight 1/2): b and c tie at the top -> c ranks 2 (ties against).
    assert vsknn_ranks(labels, encoder, np.array([row]), neighbours=1).tolist() == [2]
    # With one sampled session only the most recent sharer S4 is a candidate: q and c tie -> 2.
    assert vsknn_ranks(labels, encoder, np.array([row]), sample_sessions=1).tolist() == [2]
    # An item no neighbour holds ties at 0 with the rest of the catalogue (PAD and UNK excluded): after
    # t1's [p3] only S2 = [p3, p4] is a neighbour, so the next item p1 ranks last of 7 products.
    p1_row = int(np.flatnonzero((ev["session_id"] == "t1").to_numpy())[0])
    assert ev["product_id"].iloc[labels.next_index[p1_row]] == "p1"
    assert len(encoder.products) - 2 == 7
    assert vsknn_ranks(labels, encoder, np.array([p1_row])).tolist() == [7]


def reference_vsknn(labels: Labels, encoder: EventEncoder, rows: np.ndarray, neighbours: int,
                    sample_sessions: int) -> np.ndarray:
    """V-SKNN written plainly, one query at a time."""
    ev = labels.events
    prod = encoder.products.encode(ev["product_id"].to_numpy())
    sess = ev["session_id"].to_numpy()
    ts = naive_utc(ev["ts"])
    val_start = np.datetime64(labels.dates.val_start.tz_localize(None), "us")
    sessions: dict[str, list[int]] = {}
    for i, s in enumerate(sess):
        sessions.setdefault(s, []).append(i)
    train = [s for s, r in sessions.items() if ts[r[-1]] < val_start]
    first_seen = {s: k for k, s in enumerate(sessions)}
    train.sort(key=lambda s: (-ts[sessions[s][-1]].astype(np.int64), first_seen[s]))
    items = {s: {int(prod[i]) for i in sessions[s] if prod[i] >= 2} for s in train}
    out = np.zeros((len(rows), len(encoder.products)))
    for k, r in enumerate(rows):
        prefix = [i for i in sessions[sess[r]] if i <= r]
        w = {}
        for pos, i in enumerate(prefix):
            if prod[i] >= 2:
                w[int(prod[i])] = (pos + 1) / len(prefix)
        norm = math.sqrt(sum(v * v for v in w.values()))
        cands = [s for s in train if s != sess[r] and items[s] & w.keys()][:sample_sessions]
        sims = [(sum(w[j] for j in sorted(items[s] & w.keys())) / (norm * math.sqrt(len(items[s]))), rank, s)
                for rank, s in enumerate(cands)]
        sims.sort(key=lambda t: (-t[0], t[1]))
        for sim, _, s in sims[:neighbours]:
            for j in items[s]:
                out[k, j] += sim
    return out


def random_sessions(seed: int, n_sessions: int = 150, n_products: int = 25, days: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sessions):
        start = float(rng.uniform(0, days * 1440))
        for i in range(int(rng.integers(1, 7))):
            p = int(min(rng.zipf(1.6), n_products))
            rows.append((f"u{s % 40}", f"s{s}", start + i + float(rng.uniform(0, 0.5)), "view", f"p{p}"))
    return frame(rows)


@pytest.mark.parametrize("neighbours,sample_sessions", [(100, 2000), (3, 5), (1, 1), (4, 2)])
def test_vsknn_matches_a_plain_reference(neighbours, sample_sessions):
    labels = labels_of(random_sessions(seed=neighbours + sample_sessions), val_days=4, test_days=4, horizon=1,
                       lookback=1)
    encoder = encoder_of(labels)
    rows = np.r_[next_query_rows(labels, encoder, TEST), next_query_rows(labels, encoder, VAL)]
    assert len(rows) > 20
    got = vsknn_scores(labels, encoder, rows, neighbours, sample_sessions, chunk_size=7).toarray()
    want = reference_vsknn(labels, encoder, rows, neighbours, sample_sessions)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    ranks = vsknn_ranks(labels, encoder, rows, neighbours, sample_sessions, chunk_size=5)
    targets = encoder.products.encode(labels.events["product_id"].to_numpy()[labels.next_index[rows]])
    want[:, :2] = -np.inf
    expected = (want >= want[np.arange(len(rows)), targets][:, None]).sum(axis=1)
    np.testing.assert_array_equal(ranks, expected)
