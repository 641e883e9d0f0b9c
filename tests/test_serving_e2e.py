"""A real server on a registered model: every endpoint over HTTP, malformed requests, a schemathesis run
against the served OpenAPI schema, and served scores equal to the offline predictor's.

One tiny model is trained and registered into a private sqlite store, and one `bentoml serve` (BentoML
home in tmp) answers every test of the module.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from models.predictor import SignalPredictor
from serving.process import free_port, start_server, stop_server, wait_until_ready
from serving.api_types import EXAMPLE_REQUEST
from training.config import TrainRunConfig
from events.config_io import load_config
from training.train import train
from tests.factories import random_events, write_events

pytestmark = pytest.mark.e2e

AS_OF = "2026-02-05T00:00:00Z"
SERVED_FIELDS = ("purchase_intent", "churn_risk", "products", "categories", "brands", "segments", "history", "model")


class Served:
    def __init__(self, url: str, store: Path, run_id: str, events: pd.DataFrame):
        self.url = url
        self.client = httpx.Client(base_url=url, timeout=30.0)
        self.store = store
        self.run_id = run_id
        self.events = events

    def offline_predictor(self) -> SignalPredictor:
        """The registered bundle, loaded in this process the way offline code loads it."""
        import mlflow

        from registry import download_bundle

        mlflow.set_tracking_uri(f"sqlite:///{self.store}/mlflow.db")
        path, _ = download_bundle("session-signals", "champion", self.store / "offline")
        return SignalPredictor.from_bundle(path)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    store = tmp_path_factory.mktemp("serving")
    (store / "data").mkdir()
    events = random_events(n_users=40, days=20)
    write_events(events, store / "data")
    result = train(load_config(TrainRunConfig, None, [
        f"data.path={store / 'data'}", "split.val_days=4", "split.test_days=4", "labels.churn_horizon_days=4",
        "labels.churn_lookback_days=8", "baselines.enabled=false", "train.max_epochs=1", "train.progress_bar=false",
        f"tracking.uri=sqlite:///{store}/mlflow.db", "model.d_model=16", "model.max_len=20",
        f"output_dir={store}/runs"]))
    assert result["registration"]["champion"]
    yield from serve_champion(store, result["model_run_id"], events)


def serve_champion(store: Path, model_run_id: str, events: pd.DataFrame, **env: str) -> Iterator[Served]:
    """The champion of `store`'s MLflow store behind a real `bentoml serve`, for as long as the caller holds
    the generator; the server's log is printed when startup or a test fails."""
    port = free_port()
    proc = start_server(port, {"MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db", "BENTOML_HOME": str(store / "bentoml"),
                               "SIGNALS_WORKERS": "1", **env},  # one copy of the model is enough to test, and starts faster
                        log_file=store / "server.log")
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", timeout_s=120, proc=proc)
        yield Served(f"http://127.0.0.1:{port}", store, model_run_id, events)
    except Exception:
        print((store / "server.log").read_text()[-5000:])
        raise
    finally:
        stop_server(proc)


def shopper_json(events: pd.DataFrame, **extra) -> dict:
    """A user's canonical rows as the JSON a client sends (ISO times, null for missing values)."""
    rows = events.drop(columns="user_id").astype(object)
    rows = rows.where(rows.notna(), None)
    rows["ts"] = [t.isoformat() for t in events["ts"]]
    return {"events": rows.to_dict("records"), "as_of": AS_OF, **extra}


def good_request(served: Served) -> None:
    response = served.client.post("/predict", json=EXAMPLE_REQUEST)
    assert response.status_code == 200, response.text


def test_health_readiness_metrics_and_schema(served) -> None:
    for path in ("/livez", "/healthz", "/readyz", "/metrics"):
        assert served.client.get(path).status_code == 200, path
    spec = served.client.get("/docs.json").json()
    request_schema = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "events" in request_schema["properties"] and "example" in request_schema
    assert spec["paths"]["/predict"]["post"]["description"]


def test_predict_answers_with_signals_and_the_registered_version(served) -> None:
    user = served.events[served.events["user_id"] == "u3"]
    response = served.client.post("/predict", json=shopper_json(user, user_id="u3", k=7))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(SERVED_FIELDS) <= set(body) and body["user_id"] == "u3"
    assert body["model"] == {"name": "session-signals", "version": "1", "run_id": served.run_id}
    assert 0 <= body["purchase_intent"] <= 1 and 0 <= body["churn_risk"] <= 1
    assert len(body["products"]) == 7 and body["history"]["events_used"] == min(20, len(user))
    assert set(body["segments"]) <= {"high_intent", "cart_abandoner", "browse_abandoner", "at_risk", "dormant"}


def test_predict_batch_answers_in_request_order(served) -> None:
    shoppers = [shopper_json(served.events[served.events["user_id"] == u], user_id=u) for u in ("u1", "u2", "u5")]
    response = served.client.post("/predict_batch", json={"shoppers": [*shoppers, {"events": [], "user_id": "new"}]})
    assert response.status_code == 200, response.text
    assert [r["user_id"] for r in response.json()["results"]] == ["u1", "u2", "u5", "new"]


def test_served_scores_equal_the_offline_predictor(served) -> None:
    predictor = served.offline_predictor()
    users = [served.events[served.events["user_id"] == u] for u in ("u0", "u4", "u7", "u9")]
    users[1] = users[1].sample(frac=1.0, random_state=1)  # arrives unsorted
    users[2] = users[2].assign(product_id=["never-seen"] * len(users[2]))  # unknown products only
    users.append(served.events.iloc[:0])  # empty history
    assert max(len(u) for u in users) > 20, "one history is longer than the window"
    k = 10
    offline = predictor.score(users, [pd.Timestamp(AS_OF)] * len(users))
    response = served.client.post("/predict_batch", json={"shoppers": [shopper_json(u, k=k, k_categories=3)
                                                                       for u in users]})
    assert response.status_code == 200, response.text
    for i, signals in enumerate(response.json()["results"]):
        assert signals["purchase_intent"] == pytest.approx(offline.intent[i], rel=1e-5)
        assert signals["churn_risk"] == pytest.approx(offline.churn[i], rel=1e-5)
        best = np.argsort(-offline.products[i], kind="stable")[:k]
        assert [p["product_id"] for p in signals["products"]] == predictor.encoder.products.decode(best)
        assert [p["score"] for p in signals["products"]] == pytest.approx(np.exp(offline.products[i][best]), rel=1e-5)
        top_categories = np.argsort(-offline.categories[i][2:], kind="stable")[:3] + 2
        assert [c["name"] for c in signals["categories"]] == predictor.encoder.categories.decode(top_categories)
        assert [c["score"] for c in signals["categories"]] == pytest.approx(offline.categories[i][top_categories], rel=1e-5)


def test_filters_over_http(served) -> None:
    user = served.events[served.events["user_id"] == "u6"]
    purchased = set(user.loc[user["event_type"] == "purchase", "product_id"])
    response = served.client.post("/predict", json=shopper_json(
        user, k=100, filters={"exclude_purchased": True, "categories": ["c1", "c2"]}))
    assert response.status_code == 200, response.text
    products = response.json()["products"]
    assert products and all(p["category"] in ("c1", "c2") and p["product_id"] not in purchased for p in products)


EVENT = {"ts": "2026-02-01T10:00:00Z", "event_type": "view", "product_id": "p1", "price": 9.5}
MALFORMED = [
    ("/predict", {"events": "not a list"}, "events"),
    ("/predict", {}, "events"),
    ("/predict", {"events": [{**EVENT, "ts": "yesterday at noon"}]}, "events[0].ts"),
    ("/predict", {"events": [{**EVENT, "ts": "2999-01-01T00:00:00Z"}]}, "events[0].ts"),
    ("/predict", {"events": [{k: v for k, v in EVENT.items() if k != "product_id"}]}, "events[0].product_id"),
    ("/predict", {"events": [{**EVENT, "price": -3}]}, "events[0].price"),
    ("/predict", {"events": [{**EVENT, "price": "cheap"}]}, "events[0].price"),
    ("/predict", {"events": [], "k": 100000}, "k"),
    ("/predict", {"events": [], "k": "ten"}, "k"),
    ("/predict", {"events": [], "as_of": "soon"}, "as_of"),
    ("/predict", {"events": [EVENT] * 1001}, "events"),
    ("/predict", {"events": [], "filters": {"min_price": 10, "max_price": 1}}, "filters"),
    ("/predict", {"events": [], "filters": {"exclude_purchase": True}}, "filters.exclude_purchase"),
    ("/predict", [EVENT], "body"),
    ("/predict_batch", {"shoppers": [{"events": []}] * 257}, "shoppers"),
    ("/predict_batch", {"shoppers": []}, "shoppers"),
    ("/predict_batch", {"shoppers": [{"events": []}, {"events": [], "k": 0}]}, "shoppers[1].k"),
]


@pytest.mark.parametrize("route, body, field", MALFORMED, ids=[f"{r}:{f}" for r, _, f in MALFORMED])
def test_malformed_request_gets_400_naming_the_field_and_the_server_keeps_serving(served, route, body, field) -> None:
    response = served.client.post(route, json=body)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]
    good_request(served)


def test_invalid_json_and_oversized_bodies_are_refused(served) -> None:
    response = served.client.post("/predict", content=b'{"events": [', headers={"content-type": "application/json"})
    assert response.status_code == 400 and "body" in response.json()["error"]
    response = served.client.post("/predict", content=b" " * (17 * 1024 * 1024), headers={"content-type": "application/json"})
    assert response.status_code == 413
    good_request(served)


def test_schemathesis_finds_no_server_error(served) -> None:
    """Generated requests, valid and invalid, against the served OpenAPI schema: never a 5xx."""
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_dict(served.client.get("/docs.json").json())
    failures: list[str] = []
    calls: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "POST":
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=25, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), derandomize=True)
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case) -> None:
                response = case.call(base_url=served.url)
                calls[operation.path] = calls.get(operation.path, 0) + 1
                if response.status_code >= 500:
                    failures.append(f"{operation.path} {response.status_code}: {json.dumps(case.body)[:300]}")

            call()
    assert not failures, "\n".join(failures[:5])
    assert calls.keys() == {"/predict", "/predict_batch"} and min(calls.values()) >= 20, calls
    good_request(served)
