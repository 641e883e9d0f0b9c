"""The use cases of ../shared/USE-CASES.md that the endpoint answers, replayed against a real served model.

One small shop (cameras bought with their accessories, phones, kitchen goods) is trained into a private
MLflow store; `signals trends` writes its trends table; one `bentoml serve` (with SIGNALS_TRENDS and the
browse-abandon push at 20 minutes) answers every scenario. Each scenario is the case's events, its
as_of, and checks that the answer carries what the activation needs. The README's use-case table maps
every case to the field or file that answers it (or why it is not answered yet).
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from events.config_io import load_config
from models.complements import complements_of
from tests.factories import T0, events_frame, write_events
from tests.test_serving_e2e import Served, serve_champion
from training.config import TrainRunConfig
from training.train import train

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
PRODUCTS = {  # product -> (category, brand, price)
    **{f"cam{i}": ("camera", ("canon", "nikon")[i % 2], 400.0 + 60 * i) for i in range(4)},
    "case": ("accessory", "canon", 25.0), "battery": ("accessory", "nikon", 35.0), "strap": ("accessory", "canon", 15.0),
    **{f"phone{i}": ("phone", ("apple", "samsung")[i % 2], 600.0 + 100 * i) for i in range(4)},
    **{f"pan{i}": ("kitchen", ("tefal", "nikon")[i % 2], 30.0 + 10 * i) for i in range(6)},
}
BY_CATEGORY = {c: [p for p, (cat, _, _) in PRODUCTS.items() if cat == c] for c in ("camera", "phone", "kitchen")}
START = T0
DAYS = 24


def accessory_shop(n_users: int = 80, seed: int = 0) -> pd.DataFrame:
    """Sessions browse one category; a third end in a purchase; a camera is bought with its case and battery."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        t = float(rng.uniform(0, 24 * 60 * 2))
        for s in range(100):
            if t >= DAYS * 24 * 60:
                break
            category = str(rng.choice(list(BY_CATEGORY), p=[0.4, 0.3, 0.3]))
            viewed = [str(p) for p in rng.choice(BY_CATEGORY[category], int(rng.integers(2, 6)))]
            session = f"u{u}:{s}"
            for p in viewed:
                rows.append((f"u{u}", session, t, "view", p, *PRODUCTS[p]))
                t += float(rng.exponential(1.5)) + 0.1
            if rng.random() < 0.35:
                basket = [viewed[-1], "case", "battery"] if category == "camera" else [viewed[-1]]
                for kind in ("cart", "purchase"):
                    for p in basket:
                        rows.append((f"u{u}", session, t, kind, p, *PRODUCTS[p]))
                        t += 0.5
            t += float(rng.exponential(60 * 24 * 2)) + 60
    return events_frame(rows)  # minutes after START


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    store = tmp_path_factory.mktemp("use-cases")
    events = accessory_shop()
    write_events(events, store / "data")
    result = train(load_config(TrainRunConfig, None, [
        f"data.path={store / 'data'}", "split.val_days=3", "split.test_days=3", "labels.churn_horizon_days=3",
        "labels.churn_lookback_days=6", "baselines.enabled=false", "train.max_epochs=1", "train.progress_bar=false",
        f"tracking.uri=sqlite:///{store}/mlflow.db", "model.d_model=16", "model.max_len=20", f"output_dir={store}/runs"]))
    assert result["registration"]["champion"]
    done = subprocess.run([sys.executable, "-m", "cli.main", "trends", "--events", str(store / "data"), "--days", "7",
                           "--out", str(store / "trends")], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    yield from serve_champion(store, result["model_run_id"], events, SIGNALS_TRENDS=str(store / "trends"),
                              SIGNALS_SEGMENT_OVERRIDES="browse_abandoner.idle_minutes=20")


LAST = START + pd.Timedelta(days=DAYS)  # about the shop's last event: scenarios happen right after it


def shopper(*steps: tuple[float, str, str]) -> list[dict]:
    """(minutes after LAST, event type, product) -> the events a client sends."""
    return [{"ts": (LAST + pd.Timedelta(minutes=m)).isoformat(), "event_type": kind, "product_id": p,
             "category": PRODUCTS[p][0], "brand": PRODUCTS[p][1], "price": PRODUCTS[p][2]} for m, kind, p in steps]


def at(minutes: float) -> str:
    return (LAST + pd.Timedelta(minutes=minutes)).isoformat()


def predict(served: Served, **body) -> dict:
    response = served.client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def ids(items: list[dict]) -> list[str]:
    return [i["product_id"] for i in items]


# --- one scenario per use case the endpoint answers ---------------------------------------------------

def test_1_buyers_vs_browsers_live(served) -> None:
    buyer = predict(served, events=shopper((0, "view", "cam1"), (2, "view", "cam3"), (4, "cart", "cam1")), as_of=at(5))
    browser = predict(served, events=shopper((0, "view", "pan0")), as_of=at(1))
    for answer in (buyer, browser):
        assert 0 <= answer["purchase_intent"] <= 1 and answer["history"]["events_used"] >= 1


def test_2_high_intent_gets_the_categorys_best_sellers(served) -> None:
    answer = predict(served, events=shopper((0, "view", "phone0"), (1, "view", "phone2"), (2, "view", "phone1")),
                     as_of=at(3), lists={"trending": 3})
    trending = answer["lists"]["trending"]
    assert trending and trending[0]["category"] == "phone"  # the category being browsed comes first
    assert answer["trends"]["days"] == 7 and answer["trends"]["by"] == "purchases"


def test_3_brand_fan_gets_the_brands_recent_hits(served) -> None:
    answer = predict(served, events=shopper((0, "view", "cam1"), (1, "view", "pan1"), (2, "view", "cam3")),
                     as_of=at(3), lists={"trending": 5}, filters={"brands": ["nikon"]})
    trending = answer["lists"]["trending"]
    assert trending and {i["brand"] for i in trending} == {"nikon"}
    assert pd.Timestamp(answer["trends"]["as_of"]) > LAST - pd.Timedelta(days=1)  # the last 7 days' hits


def test_4_browse_abandonment_25_minutes_later(served) -> None:
    events = shopper((0, "view", "cam0"), (1, "view", "cam2"), (2, "view", "cam1"))
    answer = predict(served, events=events, as_of=at(2 + 25), lists={"recently_viewed": 5})
    assert "browse_abandoner" in answer["segments"]
    assert ids(answer["lists"]["recently_viewed"]) == ["cam1", "cam2", "cam0"]  # what they looked at, latest first


def test_5_dormant_for_six_months_gets_a_cross_sell(served) -> None:
    events = shopper((0, "view", "phone1"), (1, "cart", "phone1"), (2, "purchase", "phone1"))
    others = ["camera", "accessory", "kitchen"]
    answer = predict(served, events=events, as_of=at(180 * 24 * 60), lists={"next": 5},
                     filters={"categories": others})
    assert "dormant" in answer["segments"]
    assert answer["lists"]["next"] and {i["category"] for i in answer["lists"]["next"]} <= set(others)


def test_6_first_visit_offer_two_and_a_half_days_later(served) -> None:
    events = shopper((0, "view", "pan2"), (1, "view", "pan4"))
    answer = predict(served, events=events, as_of=at(2.5 * 24 * 60), lists={"recently_viewed": 3, "next": 3})
    assert ids(answer["lists"]["recently_viewed"]) == ["pan4", "pan2"] and len(answer["lists"]["next"]) == 3
    assert "dormant" not in answer["segments"]


def test_10_predictive_scores(served) -> None:
    answer = predict(served, events=shopper((0, "view", "cam0"), (1, "purchase", "cam0")), as_of=at(3 * 24 * 60))
    assert 0 <= answer["purchase_intent"] <= 1 and 0 <= answer["churn_risk"] <= 1


def test_11_recently_viewed_on_return(served) -> None:
    events = shopper((0, "view", "phone3"), (1, "view", "pan1"), (2, "view", "phone3"), (3, "purchase", "pan1"))
    answer = predict(served, events=events, as_of=at(3 * 24 * 60), lists={"recently_viewed": 5})
    assert ids(answer["lists"]["recently_viewed"]) == ["phone3"]  # de-duplicated, the bought pan left out


def test_16_cart_add_ons_are_the_carts_complements(served) -> None:
    events = shopper((0, "view", "cam2"), (1, "cart", "cam2"))
    answer = predict(served, events=events, as_of=at(2), lists={"complementary": 2},
                     filters={"exclude_in_cart": True})
    assert set(ids(answer["lists"]["complementary"])) == {"case", "battery"}  # camera -> case, battery
    upsell = predict(served, events=events, as_of=at(2), lists={"similar": 3},
                     filters={"categories": ["camera"], "min_price": 500.0, "unknown_price": "include"})
    assert upsell["lists"]["similar"] and "cam2" not in ids(upsell["lists"]["similar"])


def test_16_complements_equal_the_registered_bundles_table(served) -> None:
    from models.bundle import load_list_arrays
    from registry import download_bundle

    predictor = served.offline_predictor()  # also points MLflow at the test's store
    path, _ = download_bundle("session-signals", "champion", served.store / "offline-lists")
    arrays = load_list_arrays(path)
    cart = predictor.encoder.products.encode(["cam0", "cam1"])
    expected, scores = complements_of(cart, arrays["complement_ids"], arrays["complement_score"])
    answer = predict(served, events=shopper((0, "cart", "cam0"), (1, "cart", "cam1")), as_of=at(2),
                     lists={"complementary": 4})
    assert ids(answer["lists"]["complementary"]) == predictor.encoder.products.decode(expected[:4])
    assert [i["score"] for i in answer["lists"]["complementary"]] == pytest.approx(scores[:4].tolist(), rel=1e-6)


def test_17_and_18_abandoned_cart_with_add_ons(served) -> None:
    events = shopper((0, "view", "cam3"), (1, "cart", "cam3"))
    answer = predict(served, events=events, as_of=at(45), lists={"complementary": 3})
    assert "cart_abandoner" in answer["segments"] and "case" in ids(answer["lists"]["complementary"])


def test_19_five_flavours_three_to_five_each(served) -> None:
    events = shopper((0, "view", "cam1"), (1, "view", "cam0"), (2, "cart", "cam0"))
    lists = {"complementary": 3, "next": 5, "similar": 4, "trending": 3, "people_like_you": 3}
    answer = predict(served, events=events, as_of=at(3), lists=lists)
    for name, k in lists.items():
        assert 1 <= len(answer["lists"][name]) <= k, (name, answer["notes"])
    assert answer["lists"]["similar"][0]["category"] == "camera"  # content-based: more like what is viewed


def test_a_request_asking_for_an_unknown_list_is_refused_naming_it(served) -> None:
    response = served.client.post("/predict", json={"events": [], "lists": {"lookalike": 3, "trending": 50}})
    assert response.status_code == 400
    assert "lists.lookalike" in response.json()["error"] and "lists.trending" in response.json()["error"]


def test_every_list_is_documented_with_an_example(served) -> None:
    spec = served.client.get("/docs.json").json()
    schemas = spec["components"]["schemas"]
    for name in ("next", "complementary", "similar", "trending", "people_like_you", "recently_viewed"):
        assert schemas["ListsRequest"]["properties"][name]["description"]
        assert name in str(schemas["Lists"]["properties"])
    assert schemas["Lists"].get("example") and schemas["ListsRequest"].get("example")
    assert datetime.fromisoformat(predict(served, events=[], lists={"trending": 1})["trends"]["as_of"]) - \
        datetime.fromisoformat(LAST.isoformat()) < timedelta(days=1)
