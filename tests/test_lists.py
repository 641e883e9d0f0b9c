"""Lists by purpose in /predict's answer, without a server: the bundle's co-purchase table, each list's
rules, filters and notes, the request contract, and a trends table picked up without a restart.
The end-to-end checks over HTTP are in test_use_cases.py."""
from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from cli.main import main as signals
from events.trends import compute_trends, read_trends, write_trends
from models.bundle import load_bundle, load_list_arrays, save_bundle
from models.complements import complement_table
from models.customer_index import nearest, search_layout, their_purchases, unit_rows
from models.encoding import EventEncoder
from models.network import ModelConfig, SessionSignalsModel
from models.predictor import SignalPredictor
from serving.api_types import Event, ModelIdentity, ShopperRequest
from serving.engine import SignalsEngine
from serving.lists import trending
from serving.segments import load_rules
from serving.settings import DEFAULT_SEGMENTS_CONFIG
from tests.factories import events_frame, write_events
from training.list_tables import list_arrays, recent_buyers

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
# product -> (category, brand, price): two cameras with their accessories, two phones, a kettle
CATALOGUE = {"cam1": ("camera", "canon", 500.0), "cam2": ("camera", "nikon", 520.0),
             "case": ("accessory", "canon", 20.0), "battery": ("accessory", "generic", 30.0),
             "phone1": ("phone", "apple", 900.0), "phone2": ("phone", "samsung", 700.0),
             "kettle": ("kitchen", "generic", 40.0)}


def shop_events() -> pd.DataFrame:
    """Cameras are bought with a case and a battery; phones alone; everyone views the kettle, nobody buys
    it together with anything (views are not baskets)."""
    rows, minute = [], 0.0
    for u in range(12):
        camera = "cam1" if u % 2 else "cam2"
        basket = [camera, "case", "battery"] if u < 8 else [f"phone{u % 2 + 1}"]
        session = f"u{u}:0"
        rows.append((f"u{u}", session, minute, "view", "kettle", *CATALOGUE["kettle"]))
        for p in basket:
            rows.append((f"u{u}", session, minute + 1, "view", p, *CATALOGUE[p]))
            rows.append((f"u{u}", session, minute + 2, "cart", p, *CATALOGUE[p]))
        rows.append((f"u{u}", session, minute + 3, "view", "kettle", *CATALOGUE["kettle"]))
        for p in basket:
            rows.append((f"u{u}", session, minute + 4, "purchase", p, *CATALOGUE[p]))
        minute += 60 * 24
    return events_frame(rows)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return shop_events().sort_values(["user_id", "ts"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def bundle(events, tmp_path_factory):
    torch.manual_seed(0)
    encoder = EventEncoder.fit(events)
    model = SessionSignalsModel(ModelConfig(**encoder.sizes(), d_model=8, max_len=10, dropout=0.0))
    model.set_catalogue(torch.from_numpy(encoder.product_category), torch.from_numpy(encoder.product_brand))
    n, nc, nb = len(encoder.products), len(encoder.categories), len(encoder.brands)
    meta = {"intent_base_rate": 0.2, "churn_base_rate": 0.4, "popularity_log_prob": [-1e9, -1e9] + [-np.log(n - 2)] * (n - 2),
            "category_prior": [0, 0] + [1 / (nc - 2)] * (nc - 2), "brand_prior": [0, 0] + [1 / (nb - 2)] * (nb - 2)}
    return save_bundle(tmp_path_factory.mktemp("bundle") / "b", model.eval(), encoder, meta,
                       list_arrays(events, encoder, model))


@pytest.fixture(scope="module")
def trends_dir(events, tmp_path_factory):
    out = tmp_path_factory.mktemp("trends")
    write_trends(*compute_trends(events, days=30), out)
    return out


@pytest.fixture(scope="module")
def engine(bundle, trends_dir) -> SignalsEngine:
    return SignalsEngine.from_bundle(bundle, ModelIdentity(name="tiny", version="1", run_id="r"),
                                     load_rules(DEFAULT_SEGMENTS_CONFIG), trends_dir)


def event(minutes_ago: float, kind: str, product: str) -> Event:
    category, brand, price = CATALOGUE.get(product, (None, None, None))
    return Event(ts=NOW - timedelta(minutes=minutes_ago), event_type=kind, product_id=product, category=category,
                 brand=brand, price=price)


def ask(engine: SignalsEngine, events: list[Event], **request):
    (answer,) = engine.predict([ShopperRequest(events=events, **request)], [NOW])
    return answer


def ids(items) -> list[str]:
    return [item["product_id"] for item in items]


# --- the bundle's co-purchase table ----------------------------------------------------------------

def test_complements_count_baskets_not_views(bundle) -> None:
    arrays = load_list_arrays(bundle)
    encoder = SignalPredictor.from_bundle(bundle).encoder
    cam1, case, battery, kettle = encoder.products.encode(["cam1", "case", "battery", "kettle"])
    row = arrays["complement_ids"][cam1]
    assert set(row[:2]) == {case, battery}  # bought with it in every one of its baskets
    assert kettle not in row  # viewed in every session, never carted or bought
    assert np.isnan(arrays["product_price"][:2]).all() and arrays["product_price"][cam1] == 500.0


def test_normalised_scores_favour_specific_partners_over_best_sellers() -> None:
    # a is bought 3 times with the best-seller b (in every basket) and 2 times with c (only ever with a)
    basket = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8, 9])
    product = np.array([2, 3, 2, 3, 2, 3, 2, 4, 2, 4, 3, 3, 3, 3, 3])
    raw, _ = complement_table(basket, product, 5, 2, normalise=False)
    cosine, _ = complement_table(basket, product, 5, 2)
    assert raw[2, 0] == 3 and cosine[2, 0] == 4


# --- each list --------------------------------------------------------------------------------------

def test_cart_add_ons_are_the_cart_products_complements(engine) -> None:
    answer = ask(engine, [event(5, "view", "cam1"), event(4, "cart", "cam1")], lists={"complementary": 2})
    assert set(ids(answer.lists.complementary)) == {"case", "battery"}
    assert answer.lists.similar is None and answer.notes == []


def test_after_a_purchase_complements_of_what_was_bought(engine) -> None:
    answer = ask(engine, [event(9, "cart", "cam2"), event(8, "purchase", "cam2")], lists={"complementary": 3})
    assert set(ids(answer.lists.complementary)) == {"case", "battery"}


def test_filters_that_exclude_everything_give_an_empty_list_and_a_note(engine) -> None:
    answer = ask(engine, [event(4, "cart", "cam1")], lists={"complementary": 3, "similar": 3, "trending": 3,
                                                             "recently_viewed": 3, "next": 3, "people_like_you": 3},
                 filters={"brands": ["no-such-brand"]})
    lists = answer.lists
    assert lists.complementary == lists.similar == lists.trending == lists.recently_viewed == lists.next == []
    assert lists.people_like_you == [] and "people_like_you: the filters exclude every candidate" in answer.notes
    assert "complementary: the filters exclude every candidate" in answer.notes
    assert "next: the filters exclude every candidate" in answer.notes
    assert "recently_viewed: no viewed product left unbought" in answer.notes  # nothing viewed at all


def test_named_lists_say_whether_the_filters_or_the_table_left_them_empty(engine, bundle, events, tmp_path) -> None:
    viewed = [event(5, "view", "kettle"), event(4, "view", "cam1")]
    answer = ask(engine, viewed, lists={"recently_viewed": 3, "trending": 3}, filters={"brands": ["no-such-brand"]})
    assert answer.lists.recently_viewed == answer.lists.trending == []
    assert "recently_viewed: the filters exclude every candidate" in answer.notes
    assert "trending: the filters exclude every candidate" in answer.notes
    before_anything = events["ts"].min() - pd.Timedelta(days=10)
    write_trends(*compute_trends(events, days=1, as_of=before_anything), tmp_path)  # a table without a product
    empty = SignalsEngine.from_bundle(bundle, ModelIdentity(name="t", version=None, run_id=None),
                                      load_rules(DEFAULT_SEGMENTS_CONFIG), tmp_path)
    assert ask(empty, viewed, lists={"trending": 3}).notes == [
        "trending: shop-wide (no trends for the shopper's category or brand)", "trending: the trends table is empty"]


def test_cached_rankings_are_not_changed_by_a_filtered_request(bundle, trends_dir) -> None:
    def fresh() -> SignalsEngine:
        return SignalsEngine.from_bundle(bundle, ModelIdentity(name="t", version=None, run_id=None),
                                         load_rules(DEFAULT_SEGMENTS_CONFIG), trends_dir)

    shopper, lists = [event(5, "view", "cam1"), event(4, "cart", "cam1")], {"similar": 5, "complementary": 5}
    engine = fresh()
    ask(engine, shopper, lists=lists, filters={"brands": ["generic"], "exclude_in_cart": True})
    assert ask(engine, shopper, lists=lists).lists == ask(fresh(), shopper, lists=lists).lists


def test_complementary_says_why_when_there_is_no_basket(engine) -> None:
    answer = ask(engine, [event(4, "view", "cam1")], lists={"complementary": 3})
    assert answer.lists.complementary == [] and answer.notes == ["complementary: nothing in the cart and nothing bought"]


def test_recently_viewed_is_most_recent_first_unique_and_unbought(engine) -> None:
    events = [event(50, "view", "phone1"), event(40, "view", "kettle"), event(30, "view", "phone1"),
              event(20, "view", "never-seen"), event(15, "view", "cam1"), event(10, "purchase", "cam1")]
    answer = ask(engine, events, lists={"recently_viewed": 5})
    assert ids(answer.lists.recently_viewed) == ["never-seen", "phone1", "kettle"]
    assert answer.lists.recently_viewed[1]["category"] == "phone"
    priced = ask(engine, events, lists={"recently_viewed": 5}, filters={"max_price": 100})
    assert ids(priced.lists.recently_viewed) == ["kettle"]  # never-seen has no price: excluded by default


def test_similar_is_the_viewed_products_kind_and_honours_filters(engine) -> None:
    answer = ask(engine, [event(3, "view", "kettle"), event(2, "view", "cam1")], lists={"similar": 6})
    assert sorted(ids(answer.lists.similar)) == ["cam2", "case"]  # its category and its brand, not itself
    cheap = ask(engine, [event(3, "view", "cam1")], lists={"similar": 6}, filters={"max_price": 100})
    assert cheap.lists.similar == []
    assert cheap.notes == ["similar: the filters exclude every product of the viewed product's category and brand"]
    unknown = ask(engine, [event(3, "view", "never-seen")], lists={"similar": 3})
    assert unknown.lists.similar == [] and unknown.notes == ["similar: no viewed product the model knows"]


def test_similar_ranks_same_category_brand_and_price_band_first(bundle) -> None:
    predictor = SignalPredictor.from_bundle(bundle)
    # every learned vector alike: only category, brand and price band tell them apart
    predictor.product_table = torch.ones_like(predictor.product_table)
    engine = SignalsEngine(predictor, ModelIdentity(name="t", version=None, run_id=None),
                           load_rules(DEFAULT_SEGMENTS_CONFIG), load_list_arrays(bundle))
    answer = ask(engine, [event(3, "view", "cam1")], lists={"similar": 2})
    assert ids(answer.lists.similar) == ["cam2", "case"]  # same category and band; then same brand


def test_next_is_the_products_ranking(engine) -> None:
    events = [event(5, "view", "cam1"), event(4, "view", "phone2")]
    answer = ask(engine, events, k=3, lists={"next": 5})
    assert ids(answer.lists.next)[:3] == ids(answer.products) and len(answer.lists.next) == 5
    assert [i["score"] for i in answer.lists.next[:3]] == [p["score"] for p in answer.products]


def test_without_lists_the_answer_is_as_before(engine) -> None:
    answer = ask(engine, [event(5, "view", "cam1")])
    assert answer.lists is None and answer.notes == [] and answer.trends is None
    assert '"lists":null' in answer.model_dump_json()


# --- people_like_you: the customer index and the lookalikes' purchases ----------------------------------

def user_events(events: pd.DataFrame, user: str) -> list[Event]:
    """A customer's events replayed as a request, ending now."""
    rows = events[events["user_id"] == user]
    shift = pd.Timestamp(NOW) - rows["ts"].max()
    return [Event(ts=(r.ts + shift).to_pydatetime(), event_type=r.event_type, product_id=r.product_id,
                  category=r.category, brand=r.brand, price=r.price, session_id=r.session_id)
            for r in rows.itertuples()]


def test_the_index_holds_the_latest_buyers_and_their_latest_distinct_purchases(events) -> None:
    encoder = EventEncoder.fit(events)
    users, purchases = recent_buyers(events, encoder, n=3, per_customer=2)
    assert users.tolist() == ["u11", "u10", "u9"]  # one a day, the latest first
    assert encoder.products.decode(purchases[0]) == ["phone2", None]  # one product, then PAD
    users, purchases = recent_buyers(events, encoder, n=20, per_customer=2)
    assert len(users) == 12 and set(encoder.products.decode(purchases[-1])) <= {"cam2", "case", "battery"}


def test_the_index_holds_the_state_the_endpoint_computes_for_the_same_events(bundle, engine, events) -> None:
    arrays = load_list_arrays(bundle)
    users, _ = recent_buyers(events, engine.predictor.encoder, 20_000, 10)
    row = users.tolist().index("u5")
    (state,) = engine.predict_scored([ShopperRequest(events=user_events(events, "u5"))], [NOW]).representation
    assert arrays["customer_vectors"][row] == pytest.approx(state / np.linalg.norm(state), abs=1e-5)


def test_nearest_customers_and_their_purchases_counted_by_similarity() -> None:
    index = np.array([[1, 0], [0.8, 0.6], [0, 1], [-1, 0]], dtype=np.float32)  # unit rows
    rows, similarity = nearest(np.array([[2.0, 0.0], [0.0, -3.0]]), search_layout(index), 3)
    assert rows.tolist() == [[0, 1, 2], [0, 3, 1]] and similarity[0] == pytest.approx([1.0, 0.8, 0.0])
    purchases = np.array([[5, 6, 0], [6, 0, 0], [7, 0, 0], [8, 0, 0]], dtype=np.int32)
    ids, scores = their_purchases(rows[0], similarity[0], purchases)
    assert ids.tolist() == [6, 5, 7] and scores.tolist() == pytest.approx([1.8, 1.0, 0.0])  # PAD never listed


def test_nearest_are_the_exact_best_by_cosine_ties_by_row() -> None:
    rng = np.random.default_rng(0)
    index = unit_rows(rng.standard_normal((2000, 16)))
    index[1500] = index[700]  # a tie: the lower row first
    queries = np.vstack([rng.standard_normal((7, 16)), index[700] * 3.0])  # (8, D)
    rows, similarity = nearest(queries, search_layout(index), 50)
    exact = unit_rows(queries) @ index.T  # (8, N)
    order = np.lexsort((np.broadcast_to(np.arange(len(index)), exact.shape), -exact), axis=1)[:, :50]
    assert (rows == order).all() and similarity == pytest.approx(np.take_along_axis(exact, order, 1), abs=1e-6)
    assert rows[-1, :2].tolist() == [700, 1500]


def test_people_like_you_lists_what_the_nearest_customers_bought(engine, events) -> None:
    engine.lists.people_like_you.neighbours = 2  # u9 and u11: the same history, both bought phone2
    try:
        answer = ask(engine, user_events(events, "u9"), lists={"people_like_you": 3})
        assert ids(answer.lists.people_like_you) == ["phone2"] and answer.notes == []
        engine.lists.people_like_you.neighbours = 4  # the cam1 buyers u1, u3, u5, u7
        answer = ask(engine, user_events(events, "u7"), lists={"people_like_you": 3})
        assert set(ids(answer.lists.people_like_you)) == {"cam1", "case", "battery"}
        filtered = ask(engine, user_events(events, "u7"), lists={"people_like_you": 3},
                       filters={"exclude_purchased": True})
        assert filtered.lists.people_like_you == []
        assert filtered.notes == ["people_like_you: the filters exclude every candidate"]
    finally:
        engine.lists.people_like_you.neighbours = 50


def test_people_like_you_says_why_it_is_empty(bundle, engine, events, tmp_path) -> None:
    answer = ask(engine, [], lists={"people_like_you": 3})
    assert answer.lists.people_like_you == []
    assert answer.notes == ["people_like_you: no events: no representation to compare with other customers"]
    model, encoder, meta = load_bundle(bundle)
    old = SignalsEngine.from_bundle(save_bundle(tmp_path / "old", model, encoder, meta, list_arrays(events, encoder)),
                                    ModelIdentity(name="old", version=None, run_id=None),
                                    load_rules(DEFAULT_SEGMENTS_CONFIG))
    answer = ask(old, [event(3, "view", "cam1")], lists={"people_like_you": 3, "complementary": 3})
    assert answer.lists.people_like_you == [] and answer.notes == [
        "complementary: nothing in the cart and nothing bought",
        "people_like_you: the model's bundle has no customer index (trained on streamed data, or before it existed)"]


# --- trending: the table, and a new one without a restart --------------------------------------------

def test_trends_table_ranks_each_category_and_brand(events) -> None:
    table, info = compute_trends(events, days=30)
    cameras = table[(table["scope"] == "category") & (table["key"] == "camera")]
    assert cameras["product_id"].tolist() == ["cam1", "cam2"] and cameras["purchases"].tolist() == [4, 4]
    assert info.as_of == events["ts"].max() + pd.Timedelta(microseconds=1) and info.events == len(events)
    views, _ = compute_trends(events, days=30, by="views")
    assert views[views["scope"] == "shop"]["product_id"].iloc[0] == "kettle"
    late, info = compute_trends(events, days=1.5)  # the last day and a half: the last two shoppers' phones
    assert set(late.loc[late["scope"] == "shop", "product_id"]) == {"phone1", "phone2"}


def test_trending_is_the_category_and_the_top_brand_in_turn(engine) -> None:
    events = [event(9, "view", "phone1"), event(8, "view", "case"), event(7, "view", "cam1")]  # canon x2
    answer = ask(engine, events, lists={"trending": 4})
    assert ids(answer.lists.trending)[:2] == ["cam1", "case"]  # the category's best, then canon's next
    assert answer.trends.by == "purchases" and answer.lists.trending[0]["score"] == 4.0


def test_a_new_trends_table_is_picked_up_without_a_restart(bundle, events, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(trending, "POLL_S", 0.0)
    engine = SignalsEngine.from_bundle(bundle, ModelIdentity(name="t", version=None, run_id=None),
                                       load_rules(DEFAULT_SEGMENTS_CONFIG), tmp_path)
    shopper = [event(3, "view", "phone2")]
    before = ask(engine, shopper, lists={"trending": 3})
    assert before.lists.trending == [] and before.trends is None
    assert before.notes == [f"trending: no trends table at {tmp_path / 'trends.parquet'} yet"]
    write_trends(*compute_trends(events, days=30), tmp_path)
    first = ask(engine, shopper, lists={"trending": 3})
    assert ids(first.lists.trending) == ["phone1", "phone2"]  # two purchases each, ties by id
    write_trends(*compute_trends(events, days=30, as_of=events["ts"].max() - pd.Timedelta(days=2.5)), tmp_path)
    os.utime(tmp_path / "trends.parquet", ns=(1, 10**18))  # a distinct mtime even on a coarse clock
    second = ask(engine, shopper, lists={"trending": 3})
    assert second.trends.as_of < first.trends.as_of and ids(second.lists.trending) == ["phone1"]  # u9's phone2 is later


def test_signals_trends_command(events, tmp_path, capsys) -> None:
    write_events(events, tmp_path / "shop")
    assert signals(["trends", "--events", str(tmp_path / "shop"), "--days", "3", "--by", "views",
                    "--out", str(tmp_path / "t")]) == 0
    table, info = read_trends(tmp_path / "t")
    assert info.by == "views" and info.days == 3 and set(table["scope"]) == {"category", "brand", "shop"}
    assert signals(["trends", "--events", str(tmp_path / "shop"), "--days", "0", "--out", str(tmp_path / "t")]) == 2
    assert "--days must be positive" in capsys.readouterr().err


# --- the contract -------------------------------------------------------------------------------------

@pytest.mark.parametrize("lists, field", [({"best_of_all": 3}, "lists.best_of_all"),
                                          ({"trending": 21}, "lists.trending"), ({"similar": 0}, "lists.similar")])
def test_unknown_lists_and_k_beyond_the_limit_are_refused(lists, field) -> None:
    with pytest.raises(ValidationError) as err:
        ShopperRequest(events=[], lists=lists)
    assert [".".join(map(str, e["loc"])) for e in err.value.errors()] == [field]


@pytest.mark.parametrize("length", [True, False, 0, 21, "many"])
def test_a_list_length_must_be_a_number_from_1_to_20(length) -> None:
    with pytest.raises(ValidationError, match="lists.next"):
        ShopperRequest.model_validate({"events": [], "lists": {"next": length}})


def test_a_list_given_as_null_is_not_asked_for() -> None:
    request = ShopperRequest.model_validate({"events": [], "lists": {"next": None, "similar": None, "trending": 3}})
    assert (request.lists.next, request.lists.similar, request.lists.trending) == (None, None, 3)
