"""`signals score`: every customer scored as the endpoint scores them, the audience files, RFM, lookalikes,
streaming by partition, atomic output and bad input. Fast: a small random-weight bundle (the scores'
values do not matter here, only that batch and per-request answers agree) and a real sqlite MLflow store.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from audiences.config import load_thresholds
from audiences.event_table import EventTable
from audiences.files import atomic_folder
from audiences.rfm import GRID, SEGMENTS, rfm_scores
from audiences.score import ScoreJob, read_customers, score
from cli.main import main
from events.errors import UserFacingError
from events.trends import compute_trends, write_trends
from models.bundle import save_bundle
from models.encoding import EventEncoder
from models.network import ModelConfig, SessionSignalsModel
from serving.api_types import ModelIdentity, ShopperRequest
from serving.engine import SignalsEngine
from serving.segments import load_rules
from serving.settings import DEFAULT_SEGMENTS_CONFIG
from tests.factories import T0, events_frame, random_events, write_events

AS_OF = T0 + pd.Timedelta(days=300)
MIN = 60 * 24  # minutes per day


def scenario_events() -> pd.DataFrame:
    """Random shoppers in the first month, plus customers in known situations at AS_OF."""
    at = (AS_OF - T0).total_seconds() / 60  # AS_OF in minutes after T0
    known = events_frame([
        ("cart", "cart-1", at - 70, "view", "p1", "c1", "b1", 6.0),
        ("cart", "cart-1", at - 60, "cart", "p1", "c1", "b1", 6.0),
        ("browse", "browse-1", at - 27, "view", "p2", "c2", "b2", 7.0),
        ("browse", "browse-1", at - 26, "view", "p3", "c3", "b0", 8.0),
        ("browse", "browse-1", at - 25, "view", "p2", "c2", "b2", 7.0),
        ("gone", "gone-1", -100 * MIN, "view", "p4", "c4", "b1", 9.0),
        ("gone", "gone-1", -100 * MIN + 1, "purchase", "p4", "c4", "b1", 9.0),
        ("later", "later-1", at + 10, "view", "p5", "c0", "b2", 10.0),
        *long_history(at),
    ])
    both = pd.concat([random_events(n_users=40, days=30, seed=3), known], ignore_index=True)
    return both.sort_values(["user_id", "ts"], kind="stable", ignore_index=True)


def long_history(at: float) -> list[tuple]:
    """A customer whose answer reads events far before the model's window (20 here): a cart kept and one
    removed long ago, an old purchase, then a latest session longer than the window, idle for 40 minutes."""
    rows = [("long", "long-0", 100 * MIN, "view", "p6", "c1", "b0", 11.0),
            ("long", "long-0", 100 * MIN + 1, "cart", "p6", "c1", "b0", 11.0),
            ("long", "long-0", 100 * MIN + 2, "cart", "p7", "c2", "b1", 12.0),
            ("long", "long-1", 101 * MIN, "remove_from_cart", "p7", "c2", "b1", 12.0),
            ("long", "long-1", 101 * MIN + 1, "view", "p9", "c4", "b0", 14.0),
            ("long", "long-1", 101 * MIN + 2, "purchase", "p9", "c4", "b0", 14.0)]
    rows += [("long", "long-2", 200 * MIN + i, "view", f"p{10 + i % 20}", f"c{i % 5}", "b2", 15.0) for i in range(30)]
    return rows + [("long", "long-3", at - 65 + i, "view", f"p{i % 25}", f"c{i % 5}", "b1", 16.0) for i in range(25)]


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[Path, Path]:
    """(events folder, bundle folder)."""
    root = tmp_path_factory.mktemp("shop")
    events = scenario_events()
    write_events(events, root / "events")
    return root / "events", random_bundle(events, root / "bundle")


def random_bundle(events: pd.DataFrame, path: Path, **architecture) -> Path:
    """A bundle of random weights (seeded) over the events' vocabularies, window 20."""
    torch.manual_seed(0)
    encoder = EventEncoder.fit(events)
    model = SessionSignalsModel(ModelConfig(**encoder.sizes(), d_model=16, max_len=20, **architecture))
    uniform = lambda n: [0.0, 0.0] + [1.0 / (n - 2)] * (n - 2)
    meta = {"intent_base_rate": 0.2, "churn_base_rate": 0.4, "churn_horizon_days": 7,
            "popularity_log_prob": [-1e9, -1e9] + [float(np.log(1 / (len(encoder.products) - 2)))] * (len(encoder.products) - 2),
            "category_prior": uniform(len(encoder.categories)), "brand_prior": uniform(len(encoder.brands))}
    return save_bundle(path, model, encoder, meta)


def run_score(shop, out: Path, *overrides: str, as_of: pd.Timestamp = AS_OF) -> dict:
    events, bundle = shop  # (events folder, bundle folder)
    job = ScoreJob(EventTable.open(events), as_of, bundle, ModelIdentity(name="tiny", version="7", run_id="r"),
                   load_rules(DEFAULT_SEGMENTS_CONFIG), load_thresholds(None, list(overrides)), out)
    return score(job)


@pytest.fixture(scope="module")
def scored(shop, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("scored") / "out"
    # Low thresholds, so that the random-weight model puts customers in every score-driven audience.
    return out, run_score(shop, out, "rules.at_risk.min_churn_risk=0", "lookalikes.size=5",
                          "rules.dormant.idle_days=350", "triggers.max_idle_days=1", "scoring.batch_size=7")


def test_every_customer_gets_the_answer_the_endpoint_gives_for_their_events(shop, scored) -> None:
    out, _ = scored
    events, bundle = shop
    customers = read_customers(out).set_index("user_id")
    engine = SignalsEngine.from_bundle(bundle, ModelIdentity(name="tiny", version="7", run_id="r"),
                                       load_rules(DEFAULT_SEGMENTS_CONFIG))
    table = pd.read_parquet(events / "events.parquet")
    for user in ["u0", "u17", "cart", "browse", "gone", "long"]:
        mine = table[(table["user_id"] == user) & (table["ts"] <= AS_OF)].sample(frac=1, random_state=0)  # any order
        body = {"events": json.loads(mine.drop(columns="user_id").to_json(orient="records", date_format="iso")),
                "as_of": AS_OF.isoformat(), "k": 10, "k_categories": 3, "k_brands": 3,
                "filters": {"exclude_purchased": True}}
        served = engine.predict([ShopperRequest.model_validate(body)], [AS_OF.to_pydatetime()])[0]
        row = customers.loc[user]
        # Equal up to float32 rounding: a batch pads its windows to its longest, which reorders the sums.
        assert row["purchase_intent"] == pytest.approx(served.purchase_intent, rel=1e-5)
        assert row["churn_risk"] == pytest.approx(served.churn_risk, rel=1e-5)
        assert list(row["top_products"]) == [p["product_id"] for p in served.products]
        assert list(row["top_categories"]) == [a["name"] for a in served.categories]
        assert list(row["segments"]) == list(served.segments)
        assert row["model_version"] == "7"
    long = customers.loc["long"]
    assert long["events"] == 61 and list(long["cart_products"]) == ["p6"] and long["session_views"] == 25
    assert "p9" not in list(long["top_products"]) and {"cart_abandoner", "browse_abandoner"} <= set(long["segments"])


def test_a_model_reading_history_counts_is_given_every_event_as_the_endpoint_is(shop, tmp_path) -> None:
    """Batch scoring trims a long history's older views; a model that counts the shopper's earlier events
    (model.history_counts) would then see fewer than /predict does, so for it nothing is trimmed."""
    events, _ = shop
    bundle = random_bundle(scenario_events(), tmp_path / "bundle", history_counts=True)
    run_score((events, bundle), tmp_path / "out")
    row = read_customers(tmp_path / "out").set_index("user_id").loc["long"]
    engine = SignalsEngine.from_bundle(bundle, ModelIdentity(name="tiny", version="7", run_id="r"),
                                       load_rules(DEFAULT_SEGMENTS_CONFIG))
    table = pd.read_parquet(events / "events.parquet")
    mine = table[(table["user_id"] == "long") & (table["ts"] <= AS_OF)]
    body = {"events": json.loads(mine.drop(columns="user_id").to_json(orient="records", date_format="iso")),
            "as_of": AS_OF.isoformat(), "filters": {"exclude_purchased": True}}
    served = engine.predict([ShopperRequest.model_validate(body)], [AS_OF.to_pydatetime()])[0]
    assert row["purchase_intent"] == pytest.approx(served.purchase_intent, rel=1e-5)
    assert row["churn_risk"] == pytest.approx(served.churn_risk, rel=1e-5)


def test_the_audience_files_hold_the_customers_in_each_situation(scored) -> None:
    out, report = scored
    read = lambda name: pd.read_parquet(out / "audiences" / f"{name}.parquet")
    cart = read("cart_abandoners").set_index("user_id")
    assert list(cart.loc["cart", "cart_products"]) == ["p1"]
    browse = read("browse_abandoners").set_index("user_id")
    assert list(browse.loc["browse", "session_viewed_products"]) == ["p2", "p3"]  # most recent first, once each
    assert browse.loc["browse", "browsing_category"] == "c2"
    dormant = read("dormant").set_index("user_id")
    assert list(dormant.index) == ["gone"]  # 400 days idle; every random shopper at most 300
    assert "c4" not in {c for p in dormant.loc["gone", "cross_sell_products"] for c in [p]}  # products, not categories
    assert report["audiences"]["suppress_ads"] == report["audiences"]["outreach"] > 0
    assert list(pd.read_parquet(out / "audiences" / "suppress_ads.parquet").columns) == ["user_id"]
    for name, size in report["audiences"].items():
        ids = pd.read_csv(out / "audiences" / f"{name}.csv", dtype=str)["user_id"].tolist()
        assert ids == read(name)["user_id"].tolist() and len(ids) == size


def test_customers_without_events_before_as_of_are_counted_and_the_rest_scored_once(scored) -> None:
    out, report = scored
    customers = read_customers(out)
    assert report["customers_without_events_before_as_of"] == 1  # "later" acts only after as_of
    assert "later" not in set(customers["user_id"])
    assert customers["user_id"].is_unique and len(customers) == report["customers_scored"] == 44


def test_dormant_customers_get_products_of_categories_they_did_not_buy(shop, scored) -> None:
    out, _ = scored
    _, bundle = shop
    encoder = EventEncoder.from_dict(json.loads((bundle / "encoder.json").read_text()))
    products = read_customers(out).set_index("user_id").loc["gone", "cross_sell_products"]
    categories = encoder.categories.decode(encoder.product_category[encoder.products.encode(list(products))])
    assert len(products) and "c4" not in categories and "p4" not in list(products)


def test_rfm_segments_and_lookalikes(scored) -> None:
    out, report = scored
    customers = read_customers(out)
    buyers = customers[customers["orders"] > 0]
    assert buyers["rfm_segment"].notna().all() and customers.loc[customers["orders"] == 0, "rfm_segment"].isna().all()
    assert sum(report["audiences"][f"rfm_{s.lower().replace(' ', '_')}"] for s in SEGMENTS) == len(buyers)
    seeds = set(pd.read_parquet(out / "audiences" / "lookalike_seeds.parquet")["user_id"])
    lookalikes = pd.read_parquet(out / "audiences" / "lookalikes.parquet")
    assert len(lookalikes) == 5 and not seeds & set(lookalikes["user_id"])
    assert set(lookalikes["nearest_seed"]) <= seeds
    assert lookalikes["similarity"].is_monotonic_decreasing


def test_the_rfm_grid_names_all_eleven_segments_and_scores_follow_the_values() -> None:
    assert {s for row in GRID.values() for s in row} == set(SEGMENTS) and len(SEGMENTS) == 11
    days = pd.Series([1.0, 2, 3, 4, 5, 100, 200, 300, 400, 500])
    orders = pd.Series([9, 9, 8, 8, 7, 1, 1, 1, 1, 1])
    spend = pd.Series([900.0, 800, 700, 600, 500, 5, 4, 3, 2, 1])
    scores = rfm_scores(days, orders, spend)
    assert scores["r_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert scores["f_score"].tolist()[5:] == [1] * 5  # ties take the lowest rank: every one-order customer F=1
    assert scores["rfm_segment"].tolist()[:2] == ["Champions", "Champions"]
    assert scores["rfm_segment"].tolist()[-1] == "Lost"


@pytest.mark.parametrize("streaming", ["scoring.events_per_partition=500", "scoring.workers=2"])
def test_streaming_by_partition_gives_the_same_files(shop, scored, tmp_path, streaming) -> None:
    """Several partitions, scored one after another or in two worker processes: the files of one."""
    out, _ = scored
    report = run_score(shop, tmp_path / "parts", "rules.at_risk.min_churn_risk=0", "lookalikes.size=5",
                       "rules.dormant.idle_days=350", "triggers.max_idle_days=1", streaming)
    if streaming == "scoring.workers=2":
        assert report["workers"] == 2 and report["peak_worker_rss_mb"] > 100  # scored in worker processes
    one = read_customers(out).sort_values("user_id", ignore_index=True)
    many = read_customers(tmp_path / "parts").sort_values("user_id", ignore_index=True)
    pd.testing.assert_frame_equal(one, many)
    for name in ("lookalikes", "outreach", "rfm_champions"):
        a, b = (pd.read_parquet(f / "audiences" / f"{name}.parquet").sort_values("user_id", ignore_index=True)
                for f in (out, tmp_path / "parts"))
        pd.testing.assert_frame_equal(a, b)


def test_an_empty_audience_is_reported_not_an_error(shop, tmp_path) -> None:
    report = run_score(shop, tmp_path / "out", "rules.high_intent.min_purchase_intent=1.01")
    assert report["audiences"]["high_intent"] == 0 and "high_intent" in report["empty_audiences"]
    assert pd.read_parquet(tmp_path / "out" / "audiences" / "high_intent.parquet").empty


def test_a_failed_run_leaves_the_earlier_output_whole(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("earlier")
    with pytest.raises(RuntimeError), atomic_folder(out) as folder:
        (folder / "customers.parquet").write_text("half")
        raise RuntimeError("killed half-way")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "report.json").read_text() == "earlier"
    with atomic_folder(out) as folder:
        (folder / "report.json").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "report.json").read_text() == "new"


def test_the_command_scores_a_registered_alias_and_records_a_run(shop, tmp_path, capsys) -> None:
    import mlflow

    events, bundle = shop
    store = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(store)
    mlflow.create_experiment("models", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name("models").experiment_id) as run:
        mlflow.log_artifacts(str(bundle), "bundle")
    client = mlflow.MlflowClient()
    client.create_registered_model("session-signals")
    version = client.create_model_version("session-signals", f"runs:/{run.info.run_id}/bundle", run.info.run_id)
    client.set_registered_model_alias("session-signals", "champion", version.version)

    code = main(["score", str(events), "rules.at_risk.min_churn_risk=0", "--out", str(tmp_path / "out"),
                 "--tracking-uri", store, "--as-of", AS_OF.isoformat()])
    assert code == 0
    printed = capsys.readouterr().out
    assert "audience sizes:" in printed and "cart_abandoners" in printed
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["model"] == {"name": "session-signals", "version": "1", "run_id": run.info.run_id}
    scoring = mlflow.get_run(report["scoring_run_id"])
    assert scoring.info.status == "FINISHED"
    assert scoring.data.tags["model_version"] == "1" and scoring.data.params["input.sha256"] == report["input"]["sha256"]
    assert scoring.data.metrics["audience_cart_abandoners"] == report["audiences"]["cart_abandoners"] == 2  # cart, long
    assert read_customers(tmp_path / "out")["model_run_id"].eq(run.info.run_id).all()

    # An unknown alias is refused before any work: nothing written.
    code = main(["score", str(events), "--out", str(tmp_path / "other"), "--tracking-uri", store, "--model", "nope"])
    assert code == 2 and "no alias 'nope' of session-signals" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("args, message", [
    (["--as-of", "2025-01-01"], "is before the data"),
    (["--as-of", "yesterday"], "not an ISO 8601 time"),
    (["rules.dormant.idle_dayz=3"], "unknown config key(s) in section 'rules.dormant'"),
    (["--lists", "complementary=3,cheap=3"], "--lists: unknown list 'cheap'"),
    (["--lists", "similar=50"], "'similar=50' needs a length from 1 to 20"),
    (["--lists", "trending=3", "--trends", "/nonexistent/trends"], "not a trends table written by `signals trends`"),
])
def test_bad_input_is_refused_before_any_work(shop, tmp_path, capsys, args, message) -> None:
    events, bundle = shop
    code = main(["score", str(events), *args, "--out", str(tmp_path / "out"), "--model", str(bundle)])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_table_without_the_canonical_columns_is_named(tmp_path) -> None:
    folder = tmp_path / "odd"
    write_events(scenario_events(), folder)
    pd.read_parquet(folder / "events.parquet").rename(columns={"product_id": "item"}).to_parquet(folder / "events.parquet")
    with pytest.raises(UserFacingError, match=r"product_id \(missing\)"):
        EventTable.open(folder)


LISTS = {"next": 3, "complementary": 3, "similar": 3, "trending": 3, "people_like_you": 3, "recently_viewed": 3}


def test_lists_by_purpose_are_the_endpoints_lists_for_each_customer(shop, scored, tmp_path) -> None:
    """A real `signals score --lists` run on a bundle with list tables and a trends table: each customer's list
    columns are what /predict's engine answers for their events with those lists."""
    events_dir, _ = shop
    events = pd.read_parquet(events_dir / "events.parquet")
    bundle = listed_bundle(events[events["ts"] <= AS_OF], tmp_path / "bundle")
    table, info = compute_trends(events, days=400, as_of=AS_OF)
    write_trends(table, info, tmp_path / "trends")
    spec = ",".join(f"{name}={k}" for name, k in LISTS.items())
    code = main(["score", str(events_dir), "--out", str(tmp_path / "out"), "--model", str(bundle), "--as-of",
                 AS_OF.isoformat(), "--lists", spec, "--trends", str(tmp_path / "trends"),
                 "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"])
    assert code == 0
    customers = read_customers(tmp_path / "out").set_index("user_id")
    assert [c for c in customers.columns if c.startswith("list_")] == [f"list_{n}" for n in LISTS] + ["list_notes"]
    assert json.loads((tmp_path / "out" / "report.json").read_text())["lists"] == LISTS
    assert not [c for c in read_customers(scored[0]).columns if c.startswith("list_")]  # none unless asked

    engine = SignalsEngine.from_bundle(bundle, ModelIdentity(name="bundle", version=None, run_id=None),
                                       load_rules(DEFAULT_SEGMENTS_CONFIG), tmp_path / "trends")
    for user in ["u0", "u17", "cart", "browse", "long"]:
        mine = events[(events["user_id"] == user) & (events["ts"] <= AS_OF)]
        body = {"events": json.loads(mine.drop(columns="user_id").to_json(orient="records", date_format="iso")),
                "as_of": AS_OF.isoformat(), "k": 10, "k_categories": 3, "k_brands": 3,
                "filters": {"exclude_purchased": True}, "lists": LISTS}
        served = engine.predict([ShopperRequest.model_validate(body)], [AS_OF.to_pydatetime()])[0]
        row = customers.loc[user]
        for name in LISTS:
            assert list(row[f"list_{name}"]) == [item["product_id"] for item in getattr(served.lists, name)], (user, name)
        assert list(row["list_notes"]) == served.notes
    assert list(customers.loc["browse", "list_recently_viewed"]) == ["p2", "p3"]  # most recent first, once each
    filled = {name: customers[f"list_{name}"].map(len).gt(0).mean() for name in LISTS}
    assert min(filled.values()) > 0.3, filled  # the tables answer, not only notes


def listed_bundle(events: pd.DataFrame, path: Path) -> Path:
    """The random bundle plus the list tables training computes (complements, prices, customer index)."""
    from models.bundle import load_bundle
    from training.list_tables import list_arrays

    random_bundle(events, path)
    model, encoder, meta = load_bundle(path)
    return save_bundle(path, model, encoder, meta, list_arrays(events, encoder, model.eval()))
