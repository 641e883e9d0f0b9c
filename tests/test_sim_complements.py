"""The simulator's complementary products (accessories bought after a main item) and the tastes oracle: off by
default, the truth file agrees with the events, and turning complements on only adds accessory events."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from events.errors import UserFacingError
from events.simulator import load_simulator_config, simulate

SMALL = ["days=30", "catalogue.n_products=3000", "catalogue.n_categories=60", "catalogue.n_brands=150",
         "n_users=600", "seed=5"]
ON = ["complements.main_share=0.3"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    off, on = tmp_path_factory.mktemp("off"), tmp_path_factory.mktemp("on")
    simulate(load_simulator_config(None, SMALL), off)
    simulate(load_simulator_config(None, SMALL + ON), on)
    return off, on


@pytest.fixture(scope="module")
def added(runs: tuple[Path, Path]) -> pd.DataFrame:
    """The events of the run with complements that the run without has not, with their session's purchases."""
    off, on = (pd.read_parquet(d / "events.parquet") for d in runs)
    on["step"] = on.groupby("session_id", sort=False).cumcount()
    merged = on.merge(off.assign(funnel=True), how="left", on=list(off.columns))
    return merged[merged["funnel"].isna()].drop(columns="funnel")


def test_off_by_default_writes_no_truth_and_no_setting(runs: tuple[Path, Path]) -> None:
    off, on = runs
    assert not (off / "complements.parquet").exists()
    assert "complements" not in json.loads((off / "simulation.json").read_text())["config"]
    assert json.loads((on / "simulation.json").read_text())["config"]["complements"]["main_share"] == 0.3


def test_complements_only_add_events_and_leave_the_oracles_as_they_were(runs: tuple[Path, Path],
                                                                          added: pd.DataFrame) -> None:
    off, on = runs
    for name in ("oracle_intent.parquet", "oracle_next.parquet", "oracle_churn.parquet", "oracle_tastes.parquet"):
        assert (off / name).read_bytes() == (on / name).read_bytes(), name
    n_off, n_on = (pq_rows(d / "events.parquet") for d in runs)
    assert n_on == n_off + len(added) and len(added) > 100
    assert set(added["event_type"]) == {"view", "cart", "purchase"}
    events = pd.read_parquet(on / "events.parquet")
    assert events["ts"].is_monotonic_increasing or (events.sort_values(["user_id", "ts"], kind="stable").index
                                                   == events.index).all()
    assert (events.groupby("session_id", sort=False)["ts"].diff().dropna() > pd.Timedelta(0)).all()


def pq_rows(path: Path) -> int:
    return len(pd.read_parquet(path, columns=["user_id"]))


def test_every_added_event_is_an_accessory_of_a_main_item_bought_earlier_in_its_session(
        runs: tuple[Path, Path], added: pd.DataFrame) -> None:
    events = pd.read_parquet(runs[1] / "events.parquet")
    truth = pd.read_parquet(runs[1] / "complements.parquet")
    first_added = added.groupby("session_id")["ts"].min().rename("first_added")
    bought = events[events["event_type"] == "purchase"].join(first_added, on="session_id", how="inner")
    bought = bought[bought["ts"] < bought["first_added"]][["session_id", "product_id"]]
    offered = bought.merge(truth, left_on="product_id", right_on="main_product")[["session_id", "accessory_product"]]
    found = added.merge(offered.drop_duplicates(), how="left", left_on=["session_id", "product_id"],
                        right_on=["session_id", "accessory_product"], indicator=True)
    assert (found["_merge"] == "both").all()
    # Each carted accessory is then bought, right after the views and carts.
    assert (added["event_type"] == "cart").sum() >= (added["event_type"] == "purchase").sum() > 0


def test_truth_has_its_layout_and_accessories_of_other_categories(runs: tuple[Path, Path]) -> None:
    truth = pd.read_parquet(runs[1] / "complements.parquet")
    assert list(truth.columns) == ["main_product", "accessory_product", "strength"]
    assert truth["strength"].between(0.3, 1.0).all()
    assert truth.groupby("main_product").size().between(1, 3).all()
    assert not truth.duplicated(["main_product", "accessory_product"]).any()
    assert 0.25 < truth["main_product"].nunique() / 3000 < 0.35
    # The accessories' categories as the events record them (where recorded) differ from the main item's.
    events = pd.read_parquet(runs[1] / "events.parquet", columns=["product_id", "category"]).dropna()
    category = events.drop_duplicates("product_id").set_index("product_id")["category"]
    pairs = truth.assign(main=truth["main_product"].map(category), acc=truth["accessory_product"].map(category)).dropna()
    assert len(pairs) > 100 and (pairs["main"] != pairs["acc"]).all()


def test_tastes_oracle_holds_the_categories_and_brands_customers_browse(runs: tuple[Path, Path]) -> None:
    off = runs[0]
    tastes = pd.read_parquet(off / "oracle_tastes.parquet")
    assert list(tastes.columns) == ["user_id", "categories", "category_weights", "favourite_brands",
                                    "price_sensitivity"]
    assert len(tastes) == 600 and tastes["user_id"].is_unique
    assert tastes["category_weights"].map(lambda w: abs(w.sum() - 1) < 1e-9 and (w[:-1] >= w[1:]).all()).all()
    views = pd.read_parquet(off / "events.parquet").merge(tastes, on="user_id")
    recorded = views.dropna(subset=["category"])
    assert recorded.apply(lambda r: r["category"] in r["categories"], axis=1).all()
    branded = views.dropna(subset=["brand"])
    favourite = branded.apply(lambda r: r["brand"] in r["favourite_brands"], axis=1).mean()
    # Against another customer's favourites (favourites are drawn shop-wide, so many are not sold in one's
    # categories, and popular brands are many customers' favourites): 7.4% of views against 5.3% at seed 5.
    others = branded["favourite_brands"].sample(frac=1.0, random_state=0).to_numpy()
    baseline = pd.Series([b in f for b, f in zip(branded["brand"], others)]).mean()
    assert favourite > 1.25 * baseline


@pytest.mark.parametrize("override", ["complements.main_share=1.5", "complements.accessories_max=0",
                                      "complements.strength_min=0"])
def test_impossible_settings_name_their_key(override: str) -> None:
    with pytest.raises(UserFacingError, match=override.split("=")[0]):
        load_simulator_config(None, [override])
