"""The pure-PyTorch model: causality, bundle round trip, encoding of unknowns."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from models.bundle import save_bundle
from models.encoding import FEATURES, EventEncoder
from models.network import ModelConfig, SessionSignalsModel
from models.predictor import SignalPredictor
from models.vocab import UNK
from tests.factories import random_events


def make_model(encoder_kind: str) -> tuple[SessionSignalsModel, EventEncoder, pd.DataFrame]:
    """The plain next-product scores (no repeat/explore mixture: tests/test_repeat.py covers it), so the
    sampled path's exact scores can equal them."""
    torch.manual_seed(0)
    events = random_events(n_users=5, days=5).sort_values(["user_id", "ts"]).reset_index(drop=True)
    encoder = EventEncoder.fit(events)
    model = SessionSignalsModel(ModelConfig(**encoder.sizes(), encoder=encoder_kind, d_model=16, n_layers=2,
                                            n_heads=2, max_len=12, dropout=0.0, repeat=False)).eval()
    model.set_catalogue(torch.from_numpy(encoder.product_category), torch.from_numpy(encoder.product_brand))
    with torch.no_grad():
        model.history_weight.fill_(0.5)  # non-zero, so the round trip covers it
    return model, encoder, events


def window(encoder: EventEncoder, events: pd.DataFrame, length: int) -> dict[str, torch.Tensor]:
    enc = encoder.encode(events.head(length))
    return {name: torch.from_numpy(enc[name]).unsqueeze(0) for name in FEATURES}  # (1, L)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_changing_event_t_never_changes_outputs_before_t(kind: str) -> None:
    model, encoder, events = make_model(kind)
    x = window(encoder, events, 12)
    t = 7
    changed = {k: v.clone() for k, v in x.items()}
    changed["product"][0, t] = (changed["product"][0, t] + 3) % (len(encoder.products) - 2) + 2
    changed["event_type"][0, t] = 4  # purchase
    with torch.no_grad():
        h, h2 = model.encode(x), model.encode(changed)  # (1, L, D)
    assert torch.allclose(h[0, :t], h2[0, :t], atol=1e-6)
    assert not torch.allclose(h[0, t], h2[0, t], atol=1e-6)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_bundle_round_trip_gives_identical_scores(kind: str, tmp_path) -> None:
    model, encoder, events = make_model(kind)
    meta = {"intent_base_rate": 0.1, "churn_base_rate": 0.3,
            "popularity_log_prob": [-1e9, -1e9] + [-3.0] * (len(encoder.products) - 2),
            "category_prior": [0.0] * len(encoder.categories), "brand_prior": [0.0] * len(encoder.brands)}
    save_bundle(tmp_path / "b", model, encoder, meta)
    assert not any(p.suffix in {".pkl", ".pt", ".ckpt"} for p in (tmp_path / "b").iterdir())
    before = SignalPredictor(model, encoder, meta)
    after = SignalPredictor.from_bundle(tmp_path / "b")
    user = events[events["user_id"] == events["user_id"].iloc[0]]
    now = [user["ts"].max() + pd.Timedelta(days=2)]
    a, b = before.score([user], now), after.score([user], now)
    for field in ("intent", "churn", "products", "categories", "brands"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_unknown_products_and_empty_history_are_served() -> None:
    model, encoder, events = make_model("gru")
    meta = {"intent_base_rate": 0.1, "churn_base_rate": 0.3,
            "popularity_log_prob": [-1e9, -1e9] + [-3.0] * (len(encoder.products) - 2),
            "category_prior": [0.0] * len(encoder.categories), "brand_prior": [0.0] * len(encoder.brands)}
    predictor = SignalPredictor(model, encoder, meta)
    unknown = events.head(3).assign(product_id="never-seen", category="nope", brand=None)
    assert (encoder.encode(unknown)["product"] == UNK).all()
    empty = events.head(0)
    s = predictor.score([unknown, empty], [pd.Timestamp("2026-02-01", tz="UTC")] * 2)
    assert 0 < s.intent[0] < 1 and s.intent[1] == 0.1 and s.churn[1] == 0.3
    assert np.isfinite(s.products[0, 2:]).all() and (s.products[0, :2] == -np.inf).all()


def test_timeline_keeps_the_latest_events_in_time_order() -> None:
    model, encoder, events = make_model("gru")
    predictor = SignalPredictor(model, encoder, {"popularity_log_prob": [0.0] * len(encoder.products)})
    user = events[events["user_id"] == events["user_id"].iloc[0]].head(20)
    shuffled = user.sample(frac=1.0, random_state=1)
    a = predictor.encode_timeline(shuffled)
    b = encoder.encode(user.tail(model.cfg.max_len).assign(user_id="u"))
    for name in FEATURES:
        np.testing.assert_array_equal(a[name], b[name])


def test_scores_of_chosen_products_equal_the_full_catalogue_scores() -> None:
    from models.network import recent_products

    model, encoder, events = make_model("gru")
    x = window(encoder, events, 12)
    with torch.no_grad():
        model.history_weight.copy_(torch.linspace(1.0, 0.1, model.cfg.history))
        h = model.encode(x)[0]  # (L, D)
        history = recent_products(x["product"], model.cfg.history)[0]  # (L, K)
        full = model.product_logits(h, history)  # (L, P)
        q = model.product_query_vectors(h)
        ids = torch.arange(2, len(encoder.products))
        chosen = model.score_products(q, ids.expand(len(h), -1), history)  # (L, P - 2), bonus included
        shared = model.score_shared(q, ids)  # no bonus: differs exactly where a recent product gets one
        per_row = model.score_products(q, x["product"][0].unsqueeze(1), history)
    torch.testing.assert_close(chosen, full[:, 2:])
    bonus = full[:, 2:] - shared
    is_recent = (ids.view(1, -1, 1) == history.unsqueeze(1)).any(-1)  # (L, P - 2)
    assert (bonus[~is_recent].abs() < 1e-5).all() and (bonus[is_recent].abs() > 1e-3).all()
    torch.testing.assert_close(per_row.squeeze(1), full.gather(1, x["product"][0].unsqueeze(1)).squeeze(1))
    # the current product gets the recency bonus
    assert (history[:, 0] == x["product"][0]).all()


def test_vocabulary_gives_the_same_ids_for_requests_and_whole_tables() -> None:
    from models.vocab import SMALL, Vocabulary

    vocab = Vocabulary([f"p{i}" for i in range(1000)])
    values = [f"p{i}" for i in range(0, 1200, 3)] + [None]  # unknown and missing values included
    assert len(values) > SMALL  # the whole-table path
    table = vocab.encode(values)
    request = np.concatenate([vocab.encode(values[i:i + 50]) for i in range(0, len(values), 50)])
    np.testing.assert_array_equal(table, request)
    assert table[-1] == UNK and vocab.known_ids(["p3", "zzz"]).tolist() == [5]
