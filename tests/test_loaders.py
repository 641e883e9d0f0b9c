"""Each loader on real files: exact row accounting, the canonical schema, sessions and event-type counts.

Expected figures are recomputed here with plain pandas from the raw files wherever that is simple, so a
loader bug cannot hide behind a number copied from its own output.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from events.loaders import LoadReport, load_events, read_events
from events.loaders.report import REPORT_FILE
from events.schema import CANONICAL_SCHEMA, EVENTS_FILE, REJECTED_FILE

REPO_ROOT = Path(__file__).parents[1]
SHIPPED_REES46 = REPO_ROOT / "data" / "samples" / "rees46-2019-Oct-head.csv"


def load_and_check(format_name: str, inputs: list[Path], out: Path, **options) -> tuple[LoadReport, pd.DataFrame]:
    """Load, then check what must hold for every load: accounting, schema, report, rejected rows."""
    report = load_events(format_name, inputs, out, **options)
    assert report.rows_read == report.rows_accepted + report.rows_rejected
    assert report.rows_read == sum(item.rows_read for item in report.inputs)
    assert report.rows_rejected == sum(report.rejected_by_reason.values())
    assert pq.read_schema(out / EVENTS_FILE).equals(CANONICAL_SCHEMA)
    assert LoadReport.read(out / REPORT_FILE) == report
    rejected = pq.read_table(out / REJECTED_FILE).to_pandas()
    assert len(rejected) == report.rows_rejected
    assert rejected["reason"].value_counts().to_dict() == report.rejected_by_reason
    events = read_events(out)
    assert len(events) == report.rows_accepted
    assert report.users == events["user_id"].nunique()
    assert report.sessions == events["session_id"].nunique()
    assert report.products == events["product_id"].nunique()
    assert report.event_types == events["event_type"].value_counts().to_dict()
    return report, events


def test_rees46_shipped_sample(tmp_path: Path) -> None:
    raw = pd.read_csv(SHIPPED_REES46, dtype=str, keep_default_na=False)
    report, events = load_and_check("rees46", [SHIPPED_REES46], tmp_path)
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (5019, 5019, 0)
    assert report.event_types == {"view": 4915, "purchase": 54, "cart": 50}
    assert report.users == raw["user_id"].nunique() == 1755
    assert report.sessions == raw["user_session"].nunique() == 1906
    assert report.session_gap_minutes is None  # REES46 gives session ids
    assert events["session_id"].tolist() == raw["user_session"].tolist()
    # category: the readable code where there is one, else the numeric id
    expected_category = raw["category_code"].where(raw["category_code"] != "", raw["category_id"])
    assert events["category"].tolist() == expected_category.tolist()
    assert events["price"].tolist() == raw["price"].astype(float).tolist()
    assert events["brand"].isna().sum() == (raw["brand"] == "").sum()
    assert str(events["ts"].min()) == "2019-10-01 00:00:00+00:00"
    assert report.inputs[0].sha256 and len(report.inputs[0].sha256) == 64


@pytest.mark.realdata
def test_rees46_shared_head_is_the_shipped_sample(shared_datasets: Path) -> None:
    assert (shared_datasets / "rees46" / "2019-Oct-head.csv").read_bytes() == SHIPPED_REES46.read_bytes()


@pytest.mark.realdata
def test_taobao(shared_datasets: Path, tmp_path: Path) -> None:
    path = shared_datasets / "taobao" / "UserBehavior-even-users.csv"
    report, events = load_and_check("taobao", [path], tmp_path)
    # the file's last row is cut short (4 of 5 fields): a malformed row, counted and kept
    assert report.rows_read == 45184
    assert report.rejected_by_reason == {"out_of_range": 20, "malformed_row": 1}
    assert report.event_types == {"view": 40580, "cart": 2347, "wishlist": 1382, "purchase": 854}
    assert report.users == 413
    assert report.session_gap_minutes == 30
    rejected = pq.read_table(tmp_path / REJECTED_FILE).to_pandas()
    assert rejected.loc[rejected["reason"] == "malformed_row", "source_row"].tolist() == [45183]
    assert rejected.loc[rejected["reason"] == "malformed_row", "raw_line"].tolist() == ["100370,1968385,1875258,pv"]

    # sessions recomputed independently: per user in time order, a new one after >= 30 minutes of inactivity
    raw = pd.read_csv(path, header=None, names=["user", "item", "category", "behavior", "ts"], dtype=str)
    raw = raw.dropna().drop(index=rejected["source_row"], errors="ignore")
    raw["ts"] = raw["ts"].astype("int64")
    raw = raw.sort_values(["user", "ts"], kind="stable")
    new = (raw["user"] != raw["user"].shift()) | (raw["ts"].diff() >= 30 * 60)
    raw["n"] = new.astype(int).groupby(raw["user"]).cumsum() - 1
    expected = sorted(raw["user"] + ":" + raw["n"].astype(str))
    assert sorted(events["session_id"]) == expected
    assert report.sessions == len(set(expected))


@pytest.mark.realdata
def test_taobao_range_and_event_types_are_configurable(shared_datasets: Path, tmp_path: Path) -> None:
    path = shared_datasets / "taobao" / "UserBehavior-even-users.csv"
    report = load_events("taobao", [path], tmp_path, event_types={"fav": "view"}, ts_min="2017-11-01")
    assert report.rejected_by_reason == {"malformed_row": 1}
    assert report.event_types == {"view": 40600 + 1382, "cart": 2347, "purchase": 854}


@pytest.mark.realdata
def test_yoochoose_prepared_clicks(shared_datasets: Path, tmp_path: Path) -> None:
    folder = shared_datasets / "yoochoose"
    train, test = folder / "yoochoose-clicks-100k_train_full.txt", folder / "yoochoose-clicks-100k_test.txt"
    report, events = load_and_check("yoochoose", [train, test], tmp_path)
    assert [item.rows_read for item in report.inputs] == [70278, 13568]
    assert report.rows_rejected == 0
    raw = pd.concat([pd.read_csv(p, sep="\t", dtype=str) for p in (train, test)])
    assert report.sessions == report.users == raw["SessionId"].nunique()
    assert report.products == raw["ItemId"].nunique()
    assert report.event_types == {"view": 83846}
    assert (events["user_id"] == events["session_id"]).all()
    first = raw.iloc[0]
    assert events["ts"].iloc[0] == pd.Timestamp(round(float(first["Time"]) * 1e6), unit="us", tz="UTC")


@pytest.mark.realdata
def test_diginetica(shared_datasets: Path, tmp_path: Path) -> None:
    path = shared_datasets / "diginetica" / "sample_train-item-views.csv"
    report, events = load_and_check("diginetica", [path], tmp_path)
    assert (report.rows_read, report.rows_rejected) == (12391, 0)
    raw = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    assert report.sessions == raw["session_id"].nunique()
    anonymous = raw["user_id"] == "NA"
    expected_users = raw["user_id"].where(~anonymous, "session-" + raw["session_id"])
    assert events["user_id"].tolist() == expected_users.tolist()
    expected_ts = pd.to_datetime(raw["eventdate"], utc=True) + pd.to_timedelta(raw["timeframe"].astype(int), "ms")
    assert events["ts"].tolist() == expected_ts.tolist()


@pytest.mark.realdata
def test_online_retail(shared_datasets: Path, tmp_path: Path) -> None:
    path = shared_datasets / "online-retail" / "online_retail_I_2010-2011.parquet"
    report, events = load_and_check("online-retail", [path], tmp_path)
    raw = pd.read_parquet(path)
    # the reasons recomputed with pandas, in their order of precedence
    no_customer = raw["CustomerID"].isna()
    cancelled = raw["InvoiceNo"].str.startswith("C") & ~no_customer
    not_a_sale = (raw["Quantity"] <= 0) & ~no_customer & ~cancelled
    non_product = ~raw["StockCode"].str.fullmatch(r"\d{5}[A-Za-z]*") & ~(no_customer | cancelled | not_a_sale)
    duplicate = raw.duplicated() & ~(no_customer | cancelled | not_a_sale | non_product)
    assert report.rows_read == len(raw) == 541909
    assert int(no_customer.sum()) == 135080  # the documentation's "about a quarter" without CustomerID
    assert report.rejected_by_reason == {"missing_customer": 135080, "cancellation": int(cancelled.sum()),
                                         "non_product": int(non_product.sum()), "duplicate": int(duplicate.sum())}
    assert not_a_sale.sum() == 0  # the 1,336 write-offs with a negative quantity all lack a customer
    kept = raw[~(no_customer | cancelled | not_a_sale | non_product | duplicate)]
    assert report.rows_accepted == len(kept) == 391183
    assert kept["StockCode"].str.fullmatch(r"\d{5}[A-Za-z]*").all() and not kept.duplicated().any()
    assert report.users == kept["CustomerID"].nunique()
    assert report.sessions == kept["InvoiceNo"].nunique()
    assert report.event_types == {"purchase": 391183}
    assert events["price"].tolist() == kept["UnitPrice"].tolist()
    assert events["user_id"].iloc[0] == "17850"
    rejected = pq.read_table(tmp_path / REJECTED_FILE).to_pandas()
    non_product_codes = set(rejected.loc[rejected["reason"] == "non_product", "StockCode"])
    assert non_product_codes == set(raw.loc[non_product, "StockCode"])
    assert {"POST", "M", "BANK CHARGES", "C2", "PADS"} <= non_product_codes
    # invoice times are UK wall-clock: 2011-07-01 08:16 BST is 07:16 UTC
    summer = kept["InvoiceDate"] == pd.Timestamp("2011-07-01 08:16")
    assert (events.loc[summer.to_numpy(), "ts"] == pd.Timestamp("2011-07-01 07:16", tz="UTC")).all()


def test_a_load_that_dies_midway_leaves_the_earlier_load_whole(tmp_path: Path, monkeypatch) -> None:
    """The new load is written beside the folder and renamed into place at the end: a load killed
    midway never leaves stale events without their report, nor a half-written table under --out."""
    from events.loaders import pipeline

    out = tmp_path / "rees46"
    first = load_events("rees46", [SHIPPED_REES46], out)
    before = (out / EVENTS_FILE).read_bytes(), (out / REPORT_FILE).read_text()

    def dies(tables, events, stats):
        for table in tables:
            events.write(table)
            raise KeyboardInterrupt  # the load is stopped after its first chunk
    monkeypatch.setattr(pipeline, "_write_all", dies)
    with pytest.raises(KeyboardInterrupt):
        load_events("rees46", [SHIPPED_REES46], out, ts_min="2019-10-01")
    assert ((out / EVENTS_FILE).read_bytes(), (out / REPORT_FILE).read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rees46"]  # no partial folder left behind
    assert first.rows_read == LoadReport.read(out / REPORT_FILE).rows_read


def test_training_refuses_events_without_a_finished_load(tmp_path: Path) -> None:
    from events.errors import UserFacingError
    from events.source import events_file

    load_events("rees46", [SHIPPED_REES46], tmp_path / "load")
    (tmp_path / "load" / REPORT_FILE).unlink()  # what a load killed by an older version left behind
    with pytest.raises(UserFacingError, match="holds no finished load"):
        events_file(tmp_path / "load")


def test_a_load_never_replaces_a_folder_it_did_not_write(tmp_path: Path) -> None:
    from events.errors import UserFacingError

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserFacingError, match="holds files a load did not write"):
        load_events("rees46", [SHIPPED_REES46], tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
