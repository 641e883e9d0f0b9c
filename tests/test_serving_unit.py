"""The serving pieces without a server: request schema, history replay, encoding, filters, segments,
batching and the error guard. The end-to-end test (test_serving_e2e.py) checks them over HTTP."""
from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from models.encoding import EventEncoder
from models.network import ModelConfig, SessionSignalsModel
from models.predictor import SignalPredictor
from serving.batcher import MicroBatcher, Overloaded
from serving.candidates import allowed_products
from serving.product_groups import ProductGroups, members_by_group
from serving.engine import SignalsEngine
from serving.history import ShopperHistory
from serving.http_guard import RequestGuard, field_path
from serving.request_encoding import encode_history
from serving.api_types import EXAMPLE_REQUEST, BatchRequest, Event, Filters, ModelIdentity, ShopperRequest
from serving.segments import SegmentRules, load_rules, segments_for
from serving.settings import DEFAULT_SEGMENTS_CONFIG
from events.errors import UserFacingError
from tests.factories import random_events

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
WINDOW = 12


def event(minutes_ago: float, kind: str = "view", product: str = "p1", **fields) -> Event:
    return Event(ts=NOW - timedelta(minutes=minutes_ago), event_type=kind, product_id=product, **fields)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return random_events(n_users=20, days=10).sort_values(["user_id", "ts"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def predictor(events) -> SignalPredictor:
    torch.manual_seed(0)
    encoder = EventEncoder.fit(events)
    model = SessionSignalsModel(ModelConfig(**encoder.sizes(), d_model=16, max_len=WINDOW, dropout=0.0))
    model.set_catalogue(torch.from_numpy(encoder.product_category), torch.from_numpy(encoder.product_brand))
    torch.nn.init.normal_(model.history_weight)  # a trained model's recency bonus is not zero
    n = len(encoder.products)
    meta = {"intent_base_rate": 0.2, "churn_base_rate": 0.4,
            "popularity_log_prob": [-1e9, -1e9] + np.log(np.random.default_rng(0).dirichlet(np.ones(n - 2))).tolist(),
            "category_prior": [0, 0] + [1 / (len(encoder.categories) - 2)] * (len(encoder.categories) - 2),
            "brand_prior": [0, 0] + [1 / (len(encoder.brands) - 2)] * (len(encoder.brands) - 2)}
    return SignalPredictor(model, encoder, meta)


@pytest.fixture(scope="module")
def rules() -> SegmentRules:
    return load_rules(DEFAULT_SEGMENTS_CONFIG)


@pytest.fixture(scope="module")
def engine(predictor, rules) -> SignalsEngine:
    return SignalsEngine(predictor, ModelIdentity(name="tiny", version="1", run_id="r"), rules)


def as_events(frame: pd.DataFrame) -> list[Event]:
    """Canonical rows as the JSON a client sends: missing values are null."""
    rows = frame.drop(columns="user_id").astype(object)
    return [Event(**row) for row in rows.where(rows.notna(), None).to_dict("records")]


# --- request schema -------------------------------------------------------------------------------

def test_the_documented_example_is_a_valid_request() -> None:
    request = ShopperRequest.model_validate(EXAMPLE_REQUEST)
    assert request.events[0].ts.tzinfo is not None and request.filters.exclude_in_cart
    BatchRequest.model_validate({"shoppers": [EXAMPLE_REQUEST]})


def test_timestamps_become_utc_and_absurd_ones_are_refused() -> None:
    assert Event(ts="2026-01-01T00:00:00", event_type="view", product_id="p").ts == datetime(2026, 1, 1, tzinfo=UTC)
    assert Event(ts="2026-01-01T02:00:00+02:00", event_type="view", product_id="p").ts.hour == 0
    for bad in ("2300-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "yesterday"):
        with pytest.raises(ValidationError, match="ts"):
            Event(ts=bad, event_type="view", product_id="p")


@pytest.mark.parametrize("body, field", [
    ({"events": [{"ts": "2026-01-01", "event_type": "view", "product_id": "p", "price": -1}]}, "price"),
    ({"events": [{"ts": "2026-01-01", "event_type": "view"}]}, "product_id"),
    ({"events": [], "k": 0}, "k"),
    ({"events": [], "k": 10**6}, "k"),
    ({"events": [], "filters": {"min_price": 5, "max_price": 1}}, "filters"),
    ({"events": [], "filters": {"exclude_purchase": True}}, "exclude_purchase"),
    ({"events": [], "unexpected": 1}, "unexpected"),
    ({"events": [{"ts": "2026-01-01", "event_type": "view", "product_id": "p"}] * 1001}, "events"),
])
def test_malformed_requests_are_refused_naming_the_field(body: dict, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        ShopperRequest.model_validate(body)
    assert field in str(err.value)


def test_nan_prices_are_refused_and_numeric_ids_read_as_text_and_extra_event_fields_ignored() -> None:
    with pytest.raises(ValidationError, match="price"):
        ShopperRequest.model_validate_json('{"events": [{"ts": "2026-01-01", "event_type": "view", '
                                           '"product_id": "p", "price": NaN}]}')
    parsed = Event.model_validate({"ts": 0, "event_type": "view", "product_id": 12, "colour": "red"})
    assert parsed.product_id == "12"


# --- history -------------------------------------------------------------------------------------

def test_history_sorts_events_and_replays_the_cart() -> None:
    history = ShopperHistory.from_events([
        event(1, "purchase", "a"), event(5, "cart", "a"), event(4, "cart", "b"), event(3, "cart", "c"),
        event(2, "remove_from_cart", "c"), event(6, "view", "a", price=9.0), event(0.5, "view", "a", price=7.0)])
    assert [e.product_id for e in history.events] == ["a", "a", "b", "c", "c", "a", "a"]
    assert history.in_cart == {"b"} and history.purchased == {"a"} and history.last_price == {"a": 7.0}


def test_sessions_without_ids_are_cut_after_30_minutes_and_given_ids_are_kept() -> None:
    history = ShopperHistory.from_events([event(100), event(75), event(40), event(39)])
    assert history.starts_session.tolist() == [True, False, True, False]
    history = ShopperHistory.from_events([event(100, session_id="x"), event(10, session_id="x"),
                                          event(9, session_id="y")])
    assert history.starts_session.tolist() == [True, False, True]


# --- encoding: one encoding, equal to the offline encoder ----------------------------------------------

def test_request_encoding_equals_the_offline_encoder(events, predictor) -> None:
    for _, user in events.groupby("user_id"):
        user = user.copy()
        user.loc[user.index[::4], "product_id"] = "never-seen"  # UNK
        user.loc[user.index[1::5], ["category", "brand", "price"]] = None  # missing values
        shuffled = user.sample(frac=1.0, random_state=0)  # served events arrive in any order
        served = encode_history(ShopperHistory.from_events(as_events(shuffled)), predictor.encoder, WINDOW)
        offline = predictor.encode_timeline(user)
        for name in offline:
            np.testing.assert_array_equal(served[name], offline[name], err_msg=name)


def test_served_history_features_are_the_whole_historys_as_training_reads_them(events, predictor) -> None:
    """The window holds the latest WINDOW events, but the shopper's counts (events, purchases, sessions before
    each event) and times (hours as a customer, since the last purchase) are read over every event of the
    request, as the training table's encoding reads them."""
    from models.encoding import WHOLE_HISTORY

    long = [u for _, u in events.groupby("user_id") if len(u) > WINDOW]
    assert long, "the fixture needs a shopper with more events than the window"
    for user in long:
        user = user.sort_values("ts", kind="stable")
        trained = predictor.encoder.encode(user)  # the whole timeline, as the training table is encoded
        served = encode_history(ShopperHistory.from_events(as_events(user)), predictor.encoder, WINDOW)
        for name in WHOLE_HISTORY:
            np.testing.assert_array_equal(served[name], trained[name][-WINDOW:], err_msg=name)


def test_products_are_grouped_by_category() -> None:
    groups = members_by_group(np.array([1, 1, 3, 2, 3, 1]), 4)
    assert [g.tolist() for g in groups] == [[], [0, 1, 5], [3], [2, 4]]


# --- filters -------------------------------------------------------------------------------------------

def test_filters_restrict_the_candidates(predictor) -> None:
    catalogue = ProductGroups(predictor.encoder)
    encoder = predictor.encoder
    history = ShopperHistory.from_events([event(9, "cart", "p1", price=6.0), event(8, "purchase", "p2", price=7.0),
                                          event(7, "view", "p3", price=50.0)])
    pid = {name: int(encoder.products.encode([name])[0]) for name in ("p1", "p2", "p3")}
    assert allowed_products(Filters(), history, catalogue) is None
    allowed = allowed_products(Filters(exclude_purchased=True, exclude_in_cart=True), history, catalogue)
    assert not allowed[pid["p1"]] and not allowed[pid["p2"]] and allowed[pid["p3"]]
    allowed = allowed_products(Filters(categories=["c1"], brands=["b1"]), history, catalogue)
    ids = np.flatnonzero(allowed)
    assert len(ids) and all(encoder.categories.decode([encoder.product_category[i]]) == ["c1"] for i in ids)
    assert all(encoder.brands.decode([encoder.product_brand[i]]) == ["b1"] for i in ids)
    assert not allowed_products(Filters(categories=["no-such-category"]), history, catalogue).any()
    cheap = allowed_products(Filters(max_price=10.0), history, catalogue)
    assert set(np.flatnonzero(cheap)) == {pid["p1"], pid["p2"]}  # unknown prices excluded by default
    cheap = allowed_products(Filters(max_price=10.0, unknown_price="include"), history, catalogue)
    assert not cheap[pid["p3"]] and cheap.sum() == catalogue.n_products - 1


# --- segments ------------------------------------------------------------------------------------------

def test_segment_rules_come_from_the_yaml_and_can_be_overridden(tmp_path) -> None:
    rules = load_rules(DEFAULT_SEGMENTS_CONFIG, ("dormant.idle_days=45",))
    assert rules.dormant.idle_days == 45 and rules.high_intent.min_purchase_intent == 0.5
    (tmp_path / "partial.yaml").write_text("dormant: {idle_days: 3}\n")
    with pytest.raises(UserFacingError):
        load_rules(tmp_path / "partial.yaml")
    with pytest.raises(UserFacingError):
        load_rules(DEFAULT_SEGMENTS_CONFIG, ("dormant.idle_weeks=3",))


@pytest.mark.parametrize("events, intent, churn, expected", [
    ([], 0.9, 0.9, []),
    ([event(5), event(2, "cart")], 0.8, 0.1, ["high_intent"]),
    ([event(5), event(2, "purchase")], 0.8, 0.1, []),  # already bought in this session
    ([event(50), event(45, "cart")], 0.8, 0.1, ["cart_abandoner"]),
    ([event(50), event(48, "cart"), event(46, "remove_from_cart")], 0.1, 0.1, []),
    ([event(50, product="a"), event(48, product="b"), event(46, product="c")], 0.1, 0.1, ["browse_abandoner"]),
    ([event(60 * 24 * 5, "purchase"), event(60 * 24 * 4)], 0.1, 0.7, ["at_risk"]),
    ([event(60 * 24 * 4)], 0.1, 0.7, []),  # no purchase: not a customer yet
    ([event(60 * 24 * 40, "purchase")], 0.1, 0.7, ["dormant"]),
])
def test_segments(rules, events, intent, churn, expected) -> None:
    assert segments_for(rules, ShopperHistory.from_events(events), NOW, intent, churn) == expected


# --- engine (model, filters, ranking) without HTTP -------------------------------------------------------

def test_engine_scores_equal_the_offline_predictor(events, predictor, engine) -> None:
    users = [u for _, u in events.groupby("user_id")][:4]
    requests = [ShopperRequest(events=as_events(u), k=5) for u in users] + [ShopperRequest(events=[], k=5)]
    as_of = [NOW] * len(requests)
    served = engine.predict(requests, as_of)
    offline = predictor.score(users + [users[0].iloc[:0]], [pd.Timestamp(NOW)] * len(requests))
    for i, signals in enumerate(served):
        assert signals.purchase_intent == pytest.approx(offline.intent[i], rel=1e-5)
        assert signals.churn_risk == pytest.approx(offline.churn[i], rel=1e-5)
        best = np.argsort(-offline.products[i], kind="stable")[:5]
        assert [p["product_id"] for p in signals.products] == predictor.encoder.products.decode(best)
        assert [p["score"] for p in signals.products] == pytest.approx(np.exp(offline.products[i][best]), rel=1e-5)
    assert served[-1].purchase_intent == 0.2 and served[-1].history.events_used == 0  # base rate


def test_engine_applies_filters_and_serves_unknown_products(engine, predictor) -> None:
    request = ShopperRequest(events=[event(3, "cart", "p1"), event(2, "view", "never-seen")],
                             k=100, filters=Filters(exclude_in_cart=True, categories=["c1"]))
    (signals,) = engine.predict([request], [NOW])
    assert signals.history.unknown_products == 1
    assert signals.products and all(p["category"] == "c1" and p["product_id"] != "p1" for p in signals.products)
    scores = [p["score"] for p in signals.products]
    assert scores == sorted(scores, reverse=True)


# --- batching --------------------------------------------------------------------------------------------

def test_concurrent_requests_share_a_batch_and_overload_is_refused() -> None:
    seen_batches: list[list[int]] = []

    def score(items: list[int]) -> list[int]:
        seen_batches.append(list(items))
        return [x * 10 for x in items]

    async def scenario() -> tuple[list, list]:
        batcher = MicroBatcher(score, max_batch_size=4, max_queue=20)
        together = await asyncio.gather(*(batcher.submit([i]) for i in range(6)), batcher.submit([6, 7]))
        crowd = await asyncio.gather(*(batcher.submit([i]) for i in range(25)), return_exceptions=True)
        return list(together), crowd

    together, crowd = asyncio.run(scenario())
    assert together == [[0], [10], [20], [30], [40], [50], [60, 70]]
    assert seen_batches[:2] == [[0, 1, 2, 3], [4, 5, 6, 7]]  # arrivals while busy share a forward pass
    assert sum(isinstance(r, Overloaded) for r in crowd) == 5 and crowd[:20] == [[i * 10] for i in range(20)]


def test_one_failing_request_does_not_fail_its_batch_neighbours() -> None:
    def score(items: list[int]) -> list[int]:
        if -1 in items:
            raise ValueError("bad item")
        return items

    async def scenario():
        batcher = MicroBatcher(score, max_batch_size=8, max_queue=20)
        return await asyncio.gather(*(batcher.submit([i]) for i in (1, -1, 2, 3)), return_exceptions=True)

    results = asyncio.run(scenario())
    assert results[0] == [1] and isinstance(results[1], ValueError) and results[2:] == [[2], [3]]


# --- HTTP guard --------------------------------------------------------------------------------------

def test_field_paths_read_like_the_json() -> None:
    assert field_path(("shoppers", 2, "events", 0, "ts")) == "shoppers[2].events[0].ts"
    assert field_path(()) == "body"


def call_guarded(app, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict]:
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "headers": headers}
    asyncio.run(RequestGuard(app, max_body_bytes=100)(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def test_guard_refuses_large_bodies_and_names_fields_in_400s() -> None:
    async def validation_error(scope, receive, send):
        body = json.dumps({"error": "1 validation error", "detail": [{"loc": ["events", 0, "ts"], "msg": "bad"}]})
        await send({"type": "http.response.start", "status": 400, "headers": [(b"content-length", b"1")]})
        await send({"type": "http.response.body", "body": body.encode()})

    assert call_guarded(validation_error, b"{}", [(b"content-length", b"2")]) == (
        400, {"error": "events[0].ts: bad", "detail": [{"loc": ["events", 0, "ts"], "msg": "bad"}]})
    status, payload = call_guarded(validation_error, b"x" * 101, [(b"content-length", b"101")])
    assert status == 413 and "body" in payload["error"]
    status, _ = call_guarded(validation_error, b"x" * 101, [])  # chunked: counted as it arrives
    assert status == 413


# --- the `signals serve` command -------------------------------------------------------------------------

def test_serve_command_parses_its_flags_and_refuses_a_missing_bundle(tmp_path) -> None:
    from cli.main import build_parser, main

    args = build_parser().parse_args(["serve", "--port", "3100", "--alias", "challenger"])
    assert (args.port, args.alias, args.bundle) == (3100, "challenger", None)
    assert main(["serve", "--bundle", str(tmp_path / "missing")]) == 2
