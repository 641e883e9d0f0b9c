"""The shopper simulator: determinism, the canonical schema, plausible rates, and oracles that agree with
the data they describe (each check compares an oracle with what actually happened, within sampling error)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cli.main import main as signals
from events.errors import UserFacingError
from events.schema import CANONICAL_SCHEMA, EVENT_TYPES
from events.simulator import SimulatorConfig, load_simulator_config, simulate

SMALL = ["days=30", "catalogue.n_products=3000", "catalogue.n_categories=60", "catalogue.n_brands=150"]
EVENTS = 60_000


def small_config(*overrides: str) -> SimulatorConfig:
    return load_simulator_config(None, SMALL + list(overrides))


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate(small_config("seed=7"), out, target_events=EVENTS)
    return out


@pytest.fixture(scope="module")
def events(sim: Path) -> pd.DataFrame:
    frame = pd.read_parquet(sim / "events.parquet")
    frame["step"] = frame.groupby("session_id", sort=False).cumcount()
    return frame


@pytest.fixture(scope="module")
def session_converted(events: pd.DataFrame) -> pd.Series:
    return events.event_type.eq("purchase").groupby(events.session_id, sort=False).any()


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        simulate(small_config(f"seed={seed}"), tmp_path / name, target_events=5_000)
    for file in ("events.parquet", "oracle_intent.parquet", "oracle_next.parquet", "oracle_churn.parquet",
                 "simulation.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    assert (tmp_path / "a" / "events.parquet").read_bytes() != (tmp_path / "c" / "events.parquet").read_bytes()


def test_events_are_canonical_and_sorted(sim: Path, events: pd.DataFrame) -> None:
    assert pq.read_schema(sim / "events.parquet").equals(CANONICAL_SCHEMA)
    assert set(events.event_type) == set(EVENT_TYPES)
    order = events.sort_values(["user_id", "ts"], kind="stable").index
    assert (order == events.index).all()
    gaps = events.groupby("session_id", sort=False).ts.diff().dropna()
    assert (gaps > pd.Timedelta(0)).all(), "timestamps must strictly increase within a session"
    assert events.ts.min() >= pd.Timestamp("2026-01-01", tz="UTC")
    assert events.groupby("session_id").user_id.nunique().max() == 1
    assert 0 < events.brand.isna().mean() < 0.3 and events.price.gt(0).all()
    assert events.category.str.contains(".", regex=False).mean() > 0.9     # hierarchical names


def test_events_target_is_reached_within_one_customer(events: pd.DataFrame) -> None:
    per_user = events.groupby("user_id").size()
    assert EVENTS <= len(events) < EVENTS + per_user.iloc[-1] + 1
    assert len(events) - per_user.iloc[-1] < EVENTS


def test_rates_and_session_lengths_are_in_the_calibrated_ranges(sim: Path, events: pd.DataFrame,
                                                                 session_converted: pd.Series) -> None:
    summary = json.loads((sim / "simulation.json").read_text())["summary"]
    assert summary["events"] == len(events)
    assert summary["sessions"] == events.session_id.nunique()
    assert summary["conversion_rate"] == pytest.approx(session_converted.mean())
    # The real samples span 2.6% (REES46) to 9.2% (Taobao) of sessions with a purchase, and 69% to 90% of
    # carting sessions without one; sessions average 2.6 to 6.2 events.
    assert 0.03 < summary["conversion_rate"] < 0.08
    assert 0.6 < summary["abandonment_rate"] < 0.85
    length = events.groupby("session_id").size()
    assert 3.0 < length.mean() < 5.5 and length.median() in (2, 3, 4)
    assert length.max() < 400
    hour = events.groupby("session_id").ts.min().dt.hour
    assert (hour >= 18).mean() > 2 * (hour < 6).mean()                       # evening, not night


def test_conversion_knob_moves_conversion(tmp_path: Path) -> None:
    low = simulate(small_config("customers.propensity_logit_mean=-1.5"), tmp_path / "low", target_events=10_000)
    high = simulate(small_config("customers.propensity_logit_mean=1.0"), tmp_path / "high", target_events=10_000)
    assert low["conversion_rate"] < 0.5 * high["conversion_rate"]


def test_oracle_files_have_their_layout(sim: Path) -> None:
    assert pq.read_schema(sim / "oracle_intent.parquet").names == ["session_id", "step", "p_convert"]
    assert pq.read_schema(sim / "oracle_next.parquet").names == ["session_id", "step", "top_products", "top_probs"]
    churn = pq.read_schema(sim / "oracle_churn.parquet")
    assert churn.names == ["user_id", "cutoff", "horizon_days", "p_churn"]
    assert str(churn.field("cutoff").type) == "timestamp[us, tz=UTC]"
    assert str(pq.read_schema(sim / "oracle_intent.parquet").field("step").type) == "int32"


def test_intent_oracle_covers_steps_before_the_first_purchase(sim: Path, events: pd.DataFrame,
                                                              session_converted: pd.Series) -> None:
    intent = pd.read_parquet(sim / "oracle_intent.parquet")
    assert intent.p_convert.between(0, 1).all()
    purchased_so_far = (events.event_type == "purchase").groupby(events.session_id, sort=False).cummax()
    expected = events.loc[~purchased_so_far, ["session_id", "step"]].reset_index(drop=True)
    assert intent[["session_id", "step"]].equals(expected.astype({"step": "int32"}))

    start = intent[intent.step == 0].set_index("session_id").p_convert
    converted = session_converted.reindex(start.index)
    se = np.sqrt(start.mean() * (1 - start.mean()) / len(start))
    assert abs(start.mean() - converted.mean()) < 4 * se
    # Calibrated where it matters, not only on average: sessions the oracle rates high do convert more.
    high = start > start.quantile(0.8)
    for group in (high, ~high):
        p, y = start[group], converted[group]
        assert abs(p.mean() - y.mean()) < 4 * np.sqrt((p * (1 - p)).sum()) / len(p) + 1e-3


def test_next_oracle_covers_every_event_with_a_next_and_is_calibrated(sim: Path, events: pd.DataFrame) -> None:
    nxt = pd.read_parquet(sim / "oracle_next.parquet")
    following = events.groupby("session_id", sort=False).product_id.shift(-1)
    expected = events.loc[following.notna(), ["session_id", "step"]].reset_index(drop=True)
    assert nxt[["session_id", "step"]].equals(expected.astype({"step": "int32"}))

    probs = nxt.top_probs.map(np.asarray)
    assert nxt.top_products.map(len).between(1, 20).all()
    assert all((np.diff(p) <= 1e-15).all() and p.min() > 0 for p in probs)
    mass = probs.map(np.sum)
    assert (mass <= 1 + 1e-9).all()
    realised = following.dropna().to_numpy()
    hit = np.array([r in set(top) for r, top in zip(realised, nxt.top_products)])
    se = np.sqrt((mass * (1 - mass)).sum()) / len(mass)
    assert abs(hit.mean() - mass.mean()) < 4 * se
    first_hit = np.array([r == top[0] for r, top in zip(realised, nxt.top_products)])
    first = probs.map(lambda p: p[0])
    assert abs(first_hit.mean() - first.mean()) < 4 * np.sqrt((first * (1 - first)).sum()) / len(first)


def test_churn_oracle_matches_purchases_in_the_horizon(sim: Path, events: pd.DataFrame) -> None:
    churn = pd.read_parquet(sim / "oracle_churn.parquet")
    assert churn.p_churn.between(0, 1).all() and (churn.horizon_days == 14).all()
    assert (churn.cutoff == churn.cutoff.dt.normalize()).all()
    first_event = events.groupby("user_id").ts.min()
    assert (churn.cutoff > churn.user_id.map(first_event)).all()
    eligible = (first_event.to_numpy()[:, None] < pd.date_range("2026-01-02", periods=30, tz="UTC").to_numpy()).sum()
    assert len(churn) == eligible

    end = pd.Timestamp("2026-01-31", tz="UTC")             # 30 simulated days: later windows are unobserved
    observed = churn[churn.cutoff + pd.Timedelta(days=14) <= end].reset_index(drop=True)
    buys = events[events.event_type == "purchase"]
    pairs = observed.merge(buys[["user_id", "ts"]], on="user_id", how="left")
    in_window = (pairs.ts > pairs.cutoff) & (pairs.ts <= pairs.cutoff + pd.Timedelta(days=14))
    bought = in_window.groupby([pairs.user_id, pairs.cutoff]).any()
    no_purchase = ~bought.reindex(pd.MultiIndex.from_frame(observed[["user_id", "cutoff"]])).to_numpy()
    # Rows of one customer are correlated: the error allowance uses customers, not rows, as the sample size.
    n_users = observed.user_id.nunique()
    p = observed.p_churn.mean()
    assert abs(no_purchase.mean() - p) < 4 * np.sqrt(p * (1 - p) / n_users)
    low = observed.p_churn.to_numpy() < 0.5
    assert no_purchase[low].mean() < 0.6 < no_purchase[~low].mean()


def test_unknown_and_impossible_settings_are_errors() -> None:
    with pytest.raises(UserFacingError, match="funnel.nope"):
        load_simulator_config(None, ["funnel.nope=1"])
    with pytest.raises(UserFacingError, match="cart_rate"):
        load_simulator_config(None, ["funnel.cart_rate=0.9", "funnel.checkout_rate_from_view=0.5"])
    with pytest.raises(UserFacingError, match="start_date"):
        load_simulator_config(None, ["start_date=yesterday"])


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        signals(["simulate", "--help"])
    assert exit_info.value.code == 0
    assert "oracle_churn.parquet" in capsys.readouterr().out

    assert signals(["simulate", "--events", "2000", "--seed", "5", "--out", str(tmp_path), "--no-progress",
                    *SMALL]) == 0
    summary = json.loads((tmp_path / "simulation.json").read_text())
    assert summary["config"]["seed"] == 5 and summary["summary"]["events"] >= 2000
    assert signals(["simulate", "--out", str(tmp_path), "no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err
