"""The peers-harness adapter (benchmarks/peers): canonical events, score shape, unknown items, the stateless
contract and the encoding serving uses. Skipped where the harness (../shared/peers) is absent."""
from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.peers.adapter import (
    SessionSignalsPeer,
    canonical_events,
    write_canonical,
)
from events.loaders.events_io import read_events

PEERS = Path(os.environ.get("PEERS_DIR", Path(__file__).parents[1] / ".." / "shared" / "peers"))
DAY = 86400.0


@pytest.fixture(scope="module")
def harness():
    if not (PEERS / "evaluate.py").is_file():
        pytest.skip(f"peers harness not found at {PEERS.resolve()} (it lives outside the repository)")
    sys.path.insert(0, str(PEERS.resolve()))
    import evaluate

    return evaluate


def synthetic_frames(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw (session_id, item_id str, ts) frames as the harness's loaders return them: 6 days of sessions
    that walk a ring of 30 items (learnable), test sessions on day 6. Items 'late*' appear only on the last
    training day (the project's validation window), so the encoder never learns them."""
    rng = np.random.default_rng(seed)
    rows, sid = [], 0
    for day in range(6):
        for _ in range(40):
            t = day * DAY + rng.uniform(0, DAY - 3600)
            start, n = int(rng.integers(0, 30)), int(rng.integers(2, 8))
            items = [f"i{(start + k) % 30}" for k in range(n)]
            if day == 4 and rng.random() < 0.3:
                items[-1] = f"late{int(rng.integers(0, 3))}"
            rows += [(sid, it, t + 30.0 * k) for k, it in enumerate(items)]
            sid += 1
    df = pd.DataFrame(rows, columns=["session_id", "item_id", "ts"]).sort_values(["session_id", "ts"], kind="stable")
    last = df.groupby("session_id")["ts"].transform("max")
    return df[last < 5 * DAY].reset_index(drop=True), df[last >= 5 * DAY].reset_index(drop=True)


def test_canonical_events_are_a_canonical_table(tmp_path) -> None:
    train = pd.DataFrame({"session_id": [7, 7, 9], "item": [3, 0, 3], "ts": [1.5e9, 1.5e9 + 2.25, 1.5e9 + 9]})
    events = read_events(write_canonical(canonical_events(train), tmp_path))
    assert events["user_id"].tolist() == ["7", "7", "9"] == events["session_id"].tolist()
    assert events["product_id"].tolist() == ["3", "0", "3"]
    assert (events["event_type"] == "view").all() and events["price"].isna().all()
    assert events["category"].isna().all() and events["brand"].isna().all()
    assert events["ts"].astype("datetime64[us, UTC]").astype("int64").tolist() == [1_500_000_000_000_000, 1_500_000_002_250_000,
                                                                 1_500_000_009_000_000]


@pytest.mark.e2e
class TestFittedAdapter:
    @pytest.fixture(scope="class")
    def fitted(self, harness, tmp_path_factory):
        split = harness.apply_protocol("synthetic", *synthetic_frames())
        # no refit, so the products first seen in the validation window stay outside the vocabulary
        model = SessionSignalsPeer(overrides=["train.max_epochs=2", "model.d_model=16", "train.refit=false"], seed=1,
                                   workdir=tmp_path_factory.mktemp("peers"))
        model.fit(split.train, split.n_items)
        return model, split

    def test_scores_cover_the_catalogue_and_unknown_items_are_minus_inf(self, fitted) -> None:
        model, split = fitted
        prefixes, _ = __import__("evaluate").prefixes_and_targets(split.test_sessions)
        scores = model.score(prefixes[:17])
        assert scores.shape == (17, split.n_items)
        late = np.flatnonzero(np.char.startswith(split.item_ids.astype(str), "late"))
        assert len(late) and np.isneginf(scores[:, late]).all()
        assert not model.known_items[late].any()
        assert np.isfinite(scores[:, model.known_items]).all()
        assert model.fit_report["items_only_in_validation"] == len(late)
        assert model.fit_report["events_val_window"] > 0 and model.fit_report["epochs_run"] >= 1

    def test_stateless_a_prefix_scores_the_same_alone_and_in_any_batch(self, fitted) -> None:
        model, split = fitted
        prefixes, _ = __import__("evaluate").prefixes_and_targets(split.test_sessions)
        batch = prefixes[:40]
        together = model.score(batch)
        reversed_ = model.score(batch[::-1])[::-1]
        for i in (0, 7, 39):
            np.testing.assert_allclose(model.score([batch[i]])[0], together[i], rtol=0, atol=1e-5)
        np.testing.assert_allclose(reversed_, together, rtol=0, atol=1e-5)

    def test_prefix_is_encoded_as_serving_encodes_a_request(self, fitted) -> None:
        from serving.api_types import Event
        from serving.history import ShopperHistory
        from serving.request_encoding import encode_history

        model, _ = fitted
        prefix = np.array([0, 5, 5, 2, 1], dtype=np.int64)
        t0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
        events = [Event(ts=t0 + k * model.gap_seconds, event_type="view", product_id=str(int(i)))
                  for k, i in enumerate(prefix)]
        served = encode_history(ShopperHistory.from_events(events), model.predictor.encoder, model.predictor.window)
        ours = model.encode_prefix(prefix)
        assert served.keys() == ours.keys()
        for name in served:
            np.testing.assert_array_equal(ours[name], served[name], err_msg=name)

    def test_harness_evaluates_it(self, fitted, harness) -> None:
        model, split = fitted
        result = harness.evaluate(model, split)
        assert result["n_predictions"] == split.stats["n_predictions"]
        assert 0.0 <= result["mrr@20"] <= result["recall@20"] <= 1.0
