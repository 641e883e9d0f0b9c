"""The simulator's randomised treatment (issue 14, point 4): off by default and then invisible; when on, a
randomised assignment at decision points before the first purchase, and an uplift oracle that agrees with
what the two arms actually did (within sampling error)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from events.errors import UserFacingError
from events.simulator import load_simulator_config, simulate

SMALL = ["days=30", "catalogue.n_products=3000", "catalogue.n_categories=60", "catalogue.n_brands=150", "seed=11"]


@pytest.fixture(scope="module")
def treated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("treated")
    simulate(load_simulator_config(None, SMALL + ["treatment.enabled=true"]), out, target_events=60_000)
    return out


@pytest.fixture(scope="module")
def points(treated: Path) -> pd.DataFrame:
    """Decision points with their oracle and outcome (a purchase later in the session)."""
    events = pd.read_parquet(treated / "events.parquet")
    events["step"] = events.groupby("session_id", sort=False).cumcount()
    first_buy = events[events.event_type == "purchase"].groupby("session_id").step.min()
    frame = pd.read_parquet(treated / "treatments.parquet").merge(
        pd.read_parquet(treated / "oracle_uplift.parquet"), on=["session_id", "step"], validate="one_to_one")
    frame["first_buy"] = first_buy.reindex(frame.session_id).to_numpy()
    frame["bought"] = frame.first_buy.notna()
    return frame


def test_off_by_default_writes_nothing_new(tmp_path: Path) -> None:
    simulate(load_simulator_config(None, SMALL), tmp_path, target_events=3_000)
    assert not (tmp_path / "treatments.parquet").exists() and not (tmp_path / "oracle_uplift.parquet").exists()
    assert "treatment" not in json.loads((tmp_path / "simulation.json").read_text())["config"]


def test_decisions_are_randomised_before_the_first_purchase(treated: Path, points: pd.DataFrame) -> None:
    assert points.session_id.is_unique and points.step.between(0, 3).all()
    assert (points.first_buy.isna() | (points.first_buy > points.step)).all()
    n = len(points)
    assert abs(points.treated.mean() - 0.5) < 4 * np.sqrt(0.25 / n)
    events = pd.read_parquet(treated / "events.parquet", columns=["session_id", "ts"])
    # the decision's time is its event's
    events["step"] = events.groupby("session_id", sort=False).cumcount()
    joined = points.merge(events, on=["session_id", "step"], suffixes=("", "_event"))
    assert len(joined) == n and (joined.ts == joined.ts_event).all()


def test_the_oracle_agrees_with_both_arms(points: pd.DataFrame) -> None:
    for arm, column in ((True, "p_treated"), (False, "p_control")):
        group = points[points.treated == arm]
        se = np.sqrt((group[column] * (1 - group[column])).sum()) / len(group)
        assert abs(group.bought.mean() - group[column].mean()) < 4 * se, arm
    assert np.allclose(points.uplift, points.p_treated - points.p_control)
    observed = points[points.treated].bought.mean() - points[~points.treated].bought.mean()
    assert observed > 0 and points.uplift.mean() > 0


def test_the_effect_is_heterogeneous_and_puts_some_off(points: pd.DataFrame) -> None:
    assert (points.loc[points.do_not_disturb, "uplift"] < 0).all()
    assert (points.loc[~points.do_not_disturb, "uplift"] > -1e-12).all()  # 0 up to rounding where the lift is 0
    assert 0.05 < points.do_not_disturb.mean() < 0.4
    assert points.uplift.std() > points.uplift.mean()  # targeting matters


@pytest.fixture(scope="module")
def seen(treated: Path, points: pd.DataFrame) -> pd.DataFrame:
    """Each decision point with what the shop's own events show there: hours since the previous session
    ended, earlier sessions and purchases, items in the cart."""
    events = pd.read_parquet(treated / "events.parquet").sort_values(["user_id", "ts"], kind="stable")
    events["step"] = events.groupby("session_id", sort=False).cumcount()
    sessions = events.groupby("session_id", sort=False).agg(
        user_id=("user_id", "first"), start=("ts", "min"), end=("ts", "max"),
        bought=("event_type", lambda t: (t == "purchase").any())).sort_values(["user_id", "start"])
    by_user = sessions.groupby("user_id")
    sessions["gap_h"] = (sessions.start - by_user.end.shift()).dt.total_seconds() / 3600
    sessions["earlier_sessions"] = by_user.cumcount()
    sessions["earlier_purchases"] = by_user.bought.cumsum() - sessions.bought
    change = events.event_type.map({"cart": 1, "remove_from_cart": -1}).fillna(0)
    events["cart"] = change.groupby(events.session_id).cumsum()
    frame = points.merge(events[["session_id", "step", "cart"]], on=["session_id", "step"], validate="one_to_one")
    return frame.join(sessions[["gap_h", "earlier_sessions", "earlier_purchases"]], on="session_id")


def test_each_group_follows_what_the_shop_can_see(seen: pd.DataFrame) -> None:
    """The documented rule (events/simulator/treatment.py, default knobs), read back from the events alone."""
    back_soon = seen.gap_h < 1.5
    expected = np.select(
        [back_soon, seen.earlier_purchases >= 1, (seen.cart == 0) & (seen.earlier_sessions >= 6)],
        ["do_not_disturb", "sure_thing", "lost_cause"], "persuadable")
    assert (seen.group.to_numpy() == expected).all()
    assert set(seen.group) == {"persuadable", "sure_thing", "lost_cause", "do_not_disturb"}


def test_the_groups_uplift_signs(seen: pd.DataFrame) -> None:
    uplift = seen.groupby("group").uplift
    assert (uplift.max()[["sure_thing", "lost_cause"]].abs() < 1e-12).all()  # they buy, or not, regardless
    assert uplift.max()["do_not_disturb"] < 0 < uplift.mean()["persuadable"]
    persuadable = seen[seen.group == "persuadable"]
    hesitating = persuadable.cart > 0  # an item in the cart: the message tips the balance
    assert persuadable[hesitating].uplift.mean() > 2 * persuadable[~hesitating].uplift.mean()


def test_bad_treatment_settings_name_the_key() -> None:
    with pytest.raises(UserFacingError, match="treatment.share"):
        load_simulator_config(None, ["treatment.share=1.0"])
    with pytest.raises(UserFacingError, match="treatment.decision_steps"):
        load_simulator_config(None, ["treatment.decision_steps=0"])
