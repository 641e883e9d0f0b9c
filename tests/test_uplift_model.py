"""The uplift head (models/uplift.py), its fit (training/uplift_fit.py), the decision points' inputs
(training/uplift_data.py), and what serving and batch scoring answer with it (issue 14, points 5 and 6)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import torch

from audiences.config import load_thresholds
from audiences.definitions import audiences
from models.bundle import load_bundle, save_bundle
from models.encoding import EventEncoder
from models.network import ModelConfig, SessionSignalsModel
from models.predictor import SignalPredictor
from models.uplift import (
    N_DECISION,
    UPLIFT_DESIGNS,
    UpliftHead,
    attach_uplift_head,
    bundle_has_uplift,
)
from serving.api_types import Event, ModelIdentity, ShopperRequest
from serving.engine import SignalsEngine
from serving.segments import load_rules
from serving.settings import DEFAULT_SEGMENTS_CONFIG
from tests.factories import random_events
from training.baselines.intent import intent_features
from training.uplift_data import encode_at, states_of, windows_at
from training.uplift_finetune import FineTuneConfig, feature_targets, teach_features
from training.uplift_fit import UpliftFitConfig, fit_head, predicted_uplift

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return random_events(n_users=12, days=10).sort_values(["user_id", "ts"], kind="stable").reset_index(drop=True)


def tiny_model(events: pd.DataFrame) -> tuple[SessionSignalsModel, EventEncoder, dict]:
    torch.manual_seed(0)
    encoder = EventEncoder.fit(events)
    model = SessionSignalsModel(ModelConfig(**encoder.sizes(), d_model=16, max_len=12, dropout=0.0)).eval()
    n = len(encoder.products)
    meta = {"intent_base_rate": 0.2, "churn_base_rate": 0.4, "popularity_log_prob": [-1e9, -1e9] + [-np.log(n - 2)] * (n - 2),
            "category_prior": [0, 0] + [1 / (len(encoder.categories) - 2)] * (len(encoder.categories) - 2),
            "brand_prior": [0, 0] + [1 / (len(encoder.brands) - 2)] * (len(encoder.brands) - 2)}
    return model, encoder, meta


def with_head(model: SessionSignalsModel, design: str = "shift") -> SessionSignalsModel:
    head = UpliftHead(model.cfg.d_model, design)
    for p in head.parameters():  # a fitted head is not the zero it starts from
        torch.nn.init.normal_(p, std=0.5)
    attach_uplift_head(model, head.eval())
    return model


def uplift_of(model: SessionSignalsModel, encoder: EventEncoder, meta: dict, timelines: list[pd.DataFrame]):
    return SignalPredictor(model, encoder, meta).score(timelines, [pd.Timestamp(NOW)] * len(timelines)).uplift


@pytest.mark.parametrize("design", UPLIFT_DESIGNS)
def test_a_bundle_keeps_its_uplift_head_and_an_old_bundle_loads_without_one(events, tmp_path, design) -> None:
    model, encoder, meta = tiny_model(events)
    timelines = [events[events.user_id == events.user_id.iloc[0]], events.iloc[:0],
                 events[events.user_id == events.user_id.iloc[-1]]]  # the second: an empty history
    save_bundle(tmp_path / "old", model, encoder, meta)
    config = json.loads((tmp_path / "old" / "model_config.json").read_text())
    config.pop("uplift_head")  # as written before the field existed
    (tmp_path / "old" / "model_config.json").write_text(json.dumps(config))
    old, _, _ = load_bundle(tmp_path / "old")
    assert old.uplift_head is None and not bundle_has_uplift(tmp_path / "old")
    assert uplift_of(old, encoder, meta, timelines) is None

    save_bundle(tmp_path / "new", with_head(model, design), encoder, meta)
    loaded, _, _ = load_bundle(tmp_path / "new")
    assert bundle_has_uplift(tmp_path / "new")
    expected, got = uplift_of(model, encoder, meta, timelines), uplift_of(loaded, encoder, meta, timelines)
    assert np.isnan(got[1]) and np.allclose(got[[0, 2]], expected[[0, 2]]) and (np.abs(got[[0, 2]]) > 1e-4).all()


@pytest.mark.parametrize("design", UPLIFT_DESIGNS)
def test_a_fitted_head_ranks_by_the_effect_it_was_shown(design) -> None:
    """Randomised points whose treatment effect is the sign of the state's first coordinate (which the
    decision inputs also carry, for the design that reads only them)."""
    rng = np.random.default_rng(0)
    n, d = 6000, 8
    state = torch.from_numpy(rng.normal(size=(n, d)).astype(np.float32))
    decision = torch.zeros(n, N_DECISION)
    decision[:, -1] = state[:, 0]
    intent = torch.full((n,), -1.0)
    treated = rng.random(n) < 0.5
    effect = np.where(state[:, 0].numpy() > 0, 0.3, -0.1)
    outcome = (rng.random(n) < 0.27 + treated * effect).astype(np.int8)
    rows = np.arange(n)
    head, epochs = fit_head(design, state, intent, decision, treated, outcome, rows[:4000], rows[4000:5000],
                            UpliftFitConfig(max_epochs=30, patience=5), seed=0)
    uplift = predicted_uplift(head, state[5000:], intent[5000:], decision[5000:])
    assert epochs >= 1
    assert np.corrcoef(uplift, effect[5000:])[0, 1] > 0.5


def test_a_decision_state_reads_nothing_after_the_decision(events) -> None:
    model, encoder, _ = tiny_model(events)
    rows = np.array([3, 20, 40, len(events) - 1])
    state, intent = encode_at(events, rows, model, encoder)
    for r, s, i in zip(rows, state, intent):
        user = events.loc[r, "user_id"]
        cut = events[(events.user_id != user) | (events.index <= r)].reset_index(drop=True)
        (again,), (again_intent,) = encode_at(cut, np.array([int((cut.index[(cut.user_id == user)]).max())]), model,
                                             encoder)
        assert torch.allclose(s, again, atol=1e-5) and torch.allclose(i, again_intent, atol=1e-5)


def test_served_uplift_and_the_persuadable_segment(events) -> None:
    model, encoder, meta = tiny_model(events)
    rules = load_rules(DEFAULT_SEGMENTS_CONFIG)
    identity = ModelIdentity(name="tiny", version="1", run_id="r")
    shopper = [Event(ts=NOW - timedelta(minutes=5 - i), event_type="view", product_id=p)
               for i, p in enumerate(events.product_id.iloc[:4])]
    requests = [ShopperRequest(events=shopper), ShopperRequest(events=[])]
    without = SignalsEngine(SignalPredictor(model, encoder, meta), identity, rules).predict(requests, [NOW] * 2)
    assert [s.uplift for s in without] == [None, None] and "persuadable" not in without[0].segments

    engine = SignalsEngine(SignalPredictor(with_head(model), encoder, meta), identity, rules)
    answer, empty = engine.predict(requests, [NOW] * 2)
    (expected,) = uplift_of(model, encoder, meta, [pd.DataFrame([e.model_dump() for e in shopper]).assign(session_id="s")])
    assert answer.uplift == pytest.approx(float(expected), abs=1e-6)
    assert empty.uplift is None
    for threshold, expected in ((answer.uplift - 0.01, True), (answer.uplift + 0.01, False)):
        strict = SignalsEngine(engine.predictor, identity, load_rules(DEFAULT_SEGMENTS_CONFIG,
                                                                      (f"persuadable.min_uplift={threshold}",)))
        assert ("persuadable" in strict.predict(requests[:1], [NOW])[0].segments) is expected


def test_uplift_audiences_only_for_a_model_with_uplift() -> None:
    cfg = load_thresholds()
    names = {a.name: a for a in audiences(cfg, uplift=True)}
    assert "message_these" not in {a.name for a in audiences(cfg)}
    customers = pd.DataFrame({"uplift": [0.05, -0.02, 0.0, None]})
    assert names["message_these"].members(customers).tolist() == [True, False, False, False]
    assert names["do_not_disturb"].members(customers).tolist() == [False, True, False, False]


def test_a_model_trained_on_other_data_is_refused(tmp_path, events) -> None:
    from events.errors import UserFacingError
    from events.loaders.events_io import write_events
    from events.source import DatasetSource, file_sha256
    from training.uplift_data import check_same_data, split_of_bundle

    write_events(events, tmp_path)
    split = {"start": "2026-01-01 00:00:00+00:00", "val_start": "2026-01-05 00:00:00+00:00",
             "test_start": "2026-01-08 00:00:00+00:00", "end": "2026-01-10 00:00:00+00:00"}
    key = DatasetSource("shop", tmp_path, None, file_sha256(tmp_path / "events.parquet")).dataset_key(
        split_of_bundle({"split": split}))
    check_same_data(tmp_path, {"dataset": "shop", "dataset_key": key, "split": split})
    with pytest.raises(UserFacingError, match="trained on other data"):
        check_same_data(tmp_path, {"dataset": "shop", "dataset_key": "0123", "split": split})


def test_teaching_the_encoder_makes_its_state_carry_the_session_features(events: pd.DataFrame) -> None:
    model, encoder, _ = tiny_model(events)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = np.arange(len(events))
    windows = windows_at(events, rows, model, encoder)
    train, val = rows[rows % 4 != 0], rows[rows % 4 == 0]
    targets = feature_targets(intent_features(events)[["recency_s", "prev_sessions", "cart_adds"]], train)
    taught, epochs = teach_features(model, windows, targets, train, val, FineTuneConfig(max_epochs=15, patience=15, lr=1e-2, batch_size=64, anchor_weight=0.01),
                                    seed=0)

    def probe_error(net: SessionSignalsModel) -> float:
        """Validation error of a least-squares probe from the state to the targets, fitted on the training rows."""
        state = torch.cat([states_of(net, windows)[0], torch.ones(len(rows), 1)], 1)
        weights = torch.linalg.lstsq(state[train], targets[train]).solution
        return float(((state[val] @ weights - targets[val]) ** 2).mean())

    assert epochs > 0 and probe_error(taught) < 0.7 * probe_error(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the original is left alone
    heads = [k for k in before if k.startswith(("intent_head", "churn_head", "category_head", "brand_head"))]
    assert heads and all(torch.equal(before[k], taught.state_dict()[k]) for k in heads)  # only the encoder moved


@pytest.mark.parametrize(("away", "bought"), [(timedelta(minutes=80), True), (timedelta(minutes=100), True),
                                              (timedelta(days=3), False)])
def test_the_decision_inputs_say_how_soon_the_shopper_came_back_and_what_they_bought(events, away, bought) -> None:
    """A shopper's second session, decided at its second event with one product in the cart: the inputs carry
    the gap before that session's first event (not the in-session gap; 80 and 100 minutes share a bucket, the
    minutes tell them apart), an earlier purchase or none, the sessions started before the decision event
    (both), and the cart."""
    from models.encoding import GAP_EDGES_S
    from models.predictor import pad_windows
    from models.uplift import decision_inputs

    model, encoder, meta = tiny_model(events)
    first = NOW - timedelta(days=5)
    second = first + timedelta(minutes=10) + away
    rows = [(first, "s1", "view"), (first + timedelta(minutes=5), "s1", "cart"),
            (first + timedelta(minutes=10), "s1", "purchase" if bought else "view"),
            (second, "s2", "view"), (second + timedelta(seconds=20), "s2", "cart")]
    timeline = pd.DataFrame([{"user_id": "u", "session_id": sid, "ts": pd.Timestamp(ts), "event_type": kind,
                              "product_id": events.product_id.iloc[0], "category": events.category.iloc[0],
                              "brand": events.brand.iloc[0], "price": 10.0} for ts, sid, kind in rows])
    batch, lengths = pad_windows([SignalPredictor(model, encoder, meta).encode_timeline(timeline)])
    (inputs,) = decision_inputs(batch, torch.zeros(1, dtype=torch.long), torch.from_numpy(lengths - 1))
    gap_bucket = int(inputs[: len(inputs) - 6].argmax())
    assert gap_bucket == 2 + np.searchsorted(GAP_EDGES_S, away.total_seconds(), side="right")
    minutes, log_purchases, any_purchase, log_sessions, log_cart, any_cart = inputs[-6:].tolist()
    assert minutes == pytest.approx(np.log1p(away.total_seconds() // 60) / 10)
    assert any_purchase == float(bought) and log_purchases == pytest.approx(np.log1p(float(bought)))
    assert log_sessions == pytest.approx(np.log1p(2)) and any_cart == 1.0 and log_cart == pytest.approx(np.log1p(1))
