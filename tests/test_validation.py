"""Crafted small files: each bad row rejected with the right reason, nothing lost, clear errors."""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli.commands import load as load_command
from events.errors import UserFacingError
from events.loaders import FORMAT_NAMES, load_events, read_events, sessionize
from events.loaders.report import REPORT_FILE
from events.schema import CANONICAL_SCHEMA, EVENTS_FILE, REJECTED_FILE

SHOP_HEADER = "uid,sid,when,action,sku,cat,brand,amount"
SHOP_ROWS = [  # (row, the reason it must be rejected with, or None)
    ("u1,s1,2024-01-01 10:00:00,view,p1,c.a,b1,10.5", None),
    (",s1,2024-01-01 10:01:00,view,p1,,,1", "missing_user_id"),
    ("u1,,2024-01-01 10:02:00,view,p1,,,1", "missing_session_id"),
    ("u1,s1,2024-01-01 10:03:00,view, ,,,1", "missing_product_id"),
    ("u1,s1,2024-01-01 10:04:00,teleport,p1,,,1", "unknown_event_type"),
    ("u1,s1,yesterday,view,p1,,,1", "bad_timestamp"),
    ("u1,s1,,view,p1,,,1", "bad_timestamp"),
    ("u1,s1,2024-01-01 10:07:00,view,p1,,,-3", "negative_price"),
    ("u1,s1,2024-01-01 10:08:00,view,p1,,,abc", "bad_price"),
    ("u1,s1,2024-01-01 10:09:00,view,p1,,,inf", "bad_price"),
    ("u1,s1,2024-01-01 10:10:00,click,p1,,,", None),  # click -> view by the mapping; no price is fine
    (",,,teleport,,,,-1", "missing_user_id"),  # several failures: the first reason wins
    ("u2,s2,2030-01-01 00:00:00,purchase,p2,,,5", "out_of_range"),
    ("u2,s2,2024-03-01 12:00:00,purchase,p2,x,,0", None),
]
SHOP_MAPPING = """\
columns:
  user_id: uid
  session_id: sid
  ts: when
  event_type: action
  product_id: sku
  category: cat
  brand: brand
  price: amount
event_types:
  click: view
timestamp:
  format: "%Y-%m-%d %H:%M:%S"
ts_max: 2025-01-01
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, Path]:
    data = write(tmp_path / "shop.csv", "\n".join([SHOP_HEADER, *(row for row, _ in SHOP_ROWS)]) + "\n")
    return data, write(tmp_path / "shop.yaml", SHOP_MAPPING)


def rejected_reasons(out: Path) -> dict[int, str]:
    rejected = pq.read_table(out / REJECTED_FILE).to_pandas()
    return dict(zip(rejected["source_row"], rejected["reason"], strict=True))


def test_each_bad_row_is_rejected_with_its_reason(shop: tuple[Path, Path], tmp_path: Path) -> None:
    data, mapping = shop
    out = tmp_path / "out"
    report = load_events("csv", [data], out, mapping=mapping)
    expected = {i: reason for i, (_, reason) in enumerate(SHOP_ROWS) if reason}
    assert rejected_reasons(out) == expected
    assert report.rows_read == len(SHOP_ROWS) == report.rows_accepted + report.rows_rejected
    assert report.rejected_by_reason == {"missing_user_id": 2, "bad_timestamp": 2, "bad_price": 2,
                                         "missing_session_id": 1, "missing_product_id": 1,
                                         "unknown_event_type": 1, "negative_price": 1, "out_of_range": 1}
    # rejected rows keep their original text, so a user can see what was wrong
    rejected = pq.read_table(out / REJECTED_FILE).to_pandas().set_index("source_row")
    assert rejected.loc[5, "when"] == "yesterday" and rejected.loc[8, "amount"] == "abc"
    assert rejected.loc[5, "source_file"] == str(data)
    events = read_events(out)
    assert pq.read_schema(out / EVENTS_FILE).equals(CANONICAL_SCHEMA)
    assert events["event_type"].tolist() == ["view", "view", "purchase"]
    assert events["price"].tolist()[0] == 10.5 and pd.isna(events["price"].tolist()[1])
    assert events["category"].tolist()[0] == "c.a" and pd.isna(events["brand"].tolist()[1])
    assert str(events["ts"].iloc[0]) == "2024-01-01 10:00:00+00:00"


def test_extra_event_types_are_kept_when_asked(shop: tuple[Path, Path], tmp_path: Path) -> None:
    data, mapping = shop
    report = load_events("csv", [data], tmp_path / "out", mapping=mapping, keep_extra_types=True)
    assert "unknown_event_type" not in report.rejected_by_reason
    assert report.event_types["teleport"] == 1


def test_options_override_the_mapping(shop: tuple[Path, Path], tmp_path: Path) -> None:
    data, mapping = shop
    report = load_events("csv", [data], tmp_path / "out", mapping=mapping, ts_max="2031-01-01",
                         event_types={"teleport": "cart"})
    assert "out_of_range" not in report.rejected_by_reason
    assert report.event_types["cart"] == 1


def test_a_mapping_naming_a_missing_column_names_file_and_column(shop: tuple[Path, Path], tmp_path: Path) -> None:
    data, _ = shop
    mapping = write(tmp_path / "typo.yaml", SHOP_MAPPING.replace("product_id: sku", "product_id: item"))
    with pytest.raises(UserFacingError) as err:
        load_events("csv", [data], tmp_path / "out", mapping=mapping)
    message = str(err.value)
    assert str(data) in message and "'item'" in message and "product_id" in message and str(mapping) in message
    assert not (tmp_path / "out" / EVENTS_FILE).exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("ts_max: 2025-01-01", "ts_maxx: 1"), "unknown config key(s): ts_maxx"),
        (("  user_id: uid\n", ""), "columns.user_id is required"),
        (("event_types:", "constants:\n  colour: red\nevent_types:"), "unknown field(s) colour"),
        (("  ts: when", "  ts: [when, sid]"), "ts takes one column"),
    ],
)
def test_bad_mappings_are_refused_naming_the_mapping(shop: tuple[Path, Path], tmp_path: Path,
                                                     change: tuple[str, str], expected: str) -> None:
    data, _ = shop
    mapping = write(tmp_path / "bad.yaml", SHOP_MAPPING.replace(*change))
    with pytest.raises(UserFacingError, match="bad.yaml") as err:
        load_events("csv", [data], tmp_path / "out", mapping=mapping)
    assert expected in str(err.value)


def test_unreadable_inputs_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(UserFacingError, match="nothere.csv: no such file"):
        load_events("rees46", [tmp_path / "nothere.csv"], tmp_path / "out")
    junk = write(tmp_path / "junk.parquet", "not parquet at all")
    mapping = write(tmp_path / "m.yaml", "columns: {user_id: a, ts: b, event_type: c, product_id: d}\n")
    with pytest.raises(UserFacingError, match="junk.parquet: cannot read as Parquet"):
        load_events("parquet", [junk], tmp_path / "out", mapping=mapping)
    with pytest.raises(UserFacingError, match="needs --mapping"):
        load_events("csv", [junk], tmp_path / "out")
    with pytest.raises(UserFacingError, match="unknown format 'shopify'"):
        load_events("shopify", [junk], tmp_path / "out")


def test_malformed_rows_are_rejected_and_rows_keep_their_numbers(tmp_path: Path) -> None:
    # a Taobao-layout file with rows of the wrong width scattered through several small chunks
    lines, malformed, unknown = [], set(), set()
    for i in range(3000):
        if i % 397 == 5 or i == 2999:
            lines.append(f"{i},1,2,pv")  # a field short, like the truncated end of the real file
            malformed.add(i)
        else:
            lines.append(f"{i % 50},{i},7,{'teleport' if i % 101 == 0 else 'pv'},{1511600000 + i}")
            if i % 101 == 0:
                unknown.add(i)
    data = write(tmp_path / "ub.csv", "\n".join(lines) + "\n")
    out = tmp_path / "out"
    report = load_events("taobao", [data], out, chunk_bytes=4096)
    reasons = rejected_reasons(out)
    assert {row for row, reason in reasons.items() if reason == "malformed_row"} == malformed
    assert {row for row, reason in reasons.items() if reason == "unknown_event_type"} == unknown
    assert report.rows_read == 3000 == report.rows_accepted + report.rows_rejected
    rejected = pq.read_table(out / REJECTED_FILE).to_pandas().set_index("source_row")
    assert rejected.loc[5, "raw_line"] == "5,1,2,pv"
    assert rejected.loc[101, "item_id"] == "101"  # a good-width row after a malformed one keeps its number


def test_a_file_of_the_wrong_shape_stops_instead_of_rejecting_every_row(tmp_path: Path) -> None:
    data = write(tmp_path / "semicolons.csv", "".join(f"{i};1;2;pv;1511600000\n" for i in range(100)))
    with pytest.raises(UserFacingError, match="semicolons.csv: most rows do not have the 5 fields"):
        load_events("taobao", [data], tmp_path / "out")


def test_chunk_size_does_not_change_the_result(shop: tuple[Path, Path], tmp_path: Path) -> None:
    data, mapping = shop
    big = load_events("csv", [data], tmp_path / "big", mapping=mapping)
    small = load_events("csv", [data], tmp_path / "small", mapping=mapping, chunk_bytes=1024)
    assert big.rejected_by_reason == small.rejected_by_reason
    assert read_events(tmp_path / "big").equals(read_events(tmp_path / "small"))


SESSIONLESS_MAPPING = """\
columns: {user_id: user, ts: time, event_type: type, product_id: item}
timestamp: {unit: s}
"""


def test_sessions_are_cut_at_the_gap_across_chunks_and_partitions(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sessionize, "ROWS_PER_PARTITION", 50)  # many partitions for a small file
    t0 = 1_700_000_000
    # user a: a gap of 29:59 (same session), then exactly 30:00 (new session), then a tie at the same instant
    events = [("a", t0), ("b", t0 + 5), ("a", t0 + 1799), ("c", t0 + 10), ("a", t0 + 1799 + 1800),
              ("b", t0 + 5 + 3600), ("c", t0 + 11), ("a", t0 + 3599)]
    filler = [(f"u{i % 40}", t0 + 10 * i) for i in range(400)]  # an event per user every 400 s: one session each
    rows = [f"{user},{time},view,p{n}" for n, (user, time) in enumerate(events + filler)]
    data = write(tmp_path / "s.csv", "user,time,type,item\n" + "\n".join(rows) + "\n")
    mapping = write(tmp_path / "s.yaml", SESSIONLESS_MAPPING)
    out = tmp_path / "out"
    report = load_events("csv", [data], out, mapping=mapping, chunk_bytes=1024)
    events_out = read_events(out)
    sessions = events_out.groupby("user_id")["session_id"].apply(list).to_dict()
    assert sessions["a"] == ["a:0", "a:0", "a:1", "a:1"]  # in time order: t0, +1799, +3599 twice
    assert sessions["b"] == ["b:0", "b:1"] and sessions["c"] == ["c:0", "c:0"]
    assert report.session_gap_minutes == 30
    assert report.sessions == 2 + 2 + 1 + 40
    # a longer gap joins what 30 minutes split
    longer = load_events("csv", [data], tmp_path / "long", mapping=mapping, session_gap_minutes=61)
    assert longer.sessions == 1 + 1 + 1 + 40


def test_yoochoose_original_clicks_and_buys(tmp_path: Path) -> None:
    clicks = write(tmp_path / "yoochoose-clicks.dat",
                   "1,2014-04-07T10:51:09.277Z,214536502,0\n1,2014-04-07T10:54:09.868Z,214536500,S\n"
                   "2,not-a-time,214577561,2\n")
    buys = write(tmp_path / "yoochoose-buys.dat",
                 "1,2014-04-07T10:56:00.000Z,214536502,1046,1\n2,2014-04-06T09:00:00.000Z,214577561,-5,1\n")
    out = tmp_path / "out"
    report = load_events("yoochoose", [clicks, buys], out)
    assert report.event_types == {"view": 2, "purchase": 1}
    assert report.rejected_by_reason == {"bad_timestamp": 1, "negative_price": 1}
    events = read_events(out)
    purchase = events[events["event_type"] == "purchase"].iloc[0]
    assert (purchase["session_id"], purchase["user_id"], purchase["price"]) == ("1", "1", 1046.0)
    assert events["category"].isna().tolist() == [True, False, True]  # category 0 means unknown; S is kept
    assert str(events["ts"].iloc[0]) == "2014-04-07 10:51:09.277000+00:00"
    assert set(rejected_reasons(out).items()) == {(2, "bad_timestamp"), (1, "negative_price")}


def test_online_retail_csv_export(tmp_path: Path) -> None:
    data = write(tmp_path / "online_retail.csv", "\n".join([
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
        "536365,85123A,HEART,6,12/1/2010 8:26,2.55,17850.0,United Kingdom",
        "C536379,D,Discount,-1,12/1/2010 9:41,27.5,14527.0,United Kingdom",
        "536414,22139,,56,12/1/2010 11:52,0,,United Kingdom",
        "536999,22139,RETURN,-3,2011-06-01 10:00:00,1.5,,United Kingdom",
        "537000,22140,ROBIN,2,2011-06-01 10:00:00,1.5,12345,United Kingdom",
        "537000,POST,POSTAGE,1,2011-06-01 10:00:00,18,12345,United Kingdom",
        "537000,22140,ROBIN,2,2011-06-01 10:00:00,1.5,12345,United Kingdom",
        "537001,22140,DAMAGED,-2,2011-06-01 11:00:00,0,12345,United Kingdom",
        "C537002,22140,ROBIN,-1,2011-06-02 10:00:00,1.5,,United Kingdom",
    ]) + "\n")
    out = tmp_path / "out"
    report = load_events("online-retail", [data], out)
    # no customer first (as many as the documentation's missing CustomerIDs), then C invoices, not-a-sale
    # quantities, charges and other non-product codes, exact repeats of an earlier line
    assert rejected_reasons(out) == {1: "cancellation", 2: "missing_customer", 3: "missing_customer",
                                     5: "non_product", 6: "duplicate", 7: "bad_quantity", 8: "missing_customer"}
    events = read_events(out)
    assert events["user_id"].tolist() == ["17850", "12345"]
    assert events["session_id"].tolist() == ["536365", "537000"]
    # UK wall-clock time: GMT in December, BST (UTC+1) in June
    assert [str(t) for t in events["ts"]] == ["2010-12-01 08:26:00+00:00", "2011-06-01 09:00:00+00:00"]
    assert report.event_types == {"purchase": 2}


def test_diginetica_anonymous_users_and_bad_times(tmp_path: Path) -> None:
    data = write(tmp_path / "views.csv", "session_id;user_id;item_id;timeframe;eventdate\n"
                 "1;NA;81766;526309;2016-05-09\n1;NA;31331;x;2016-05-09\n2;5;32118;1000;2016-05-10\n")
    out = tmp_path / "out"
    report = load_events("diginetica", [data], out)
    assert rejected_reasons(out) == {1: "bad_timestamp"}
    events = read_events(out)
    assert events["user_id"].tolist() == ["session-1", "5"]
    assert str(events["ts"].iloc[1]) == "2016-05-10 00:00:01+00:00"
    assert report.sessions == 2


def test_typed_parquet_with_constants_and_a_timezone(tmp_path: Path) -> None:
    table = pa.table({
        "customer": pa.array([7, 7, 8], pa.int64()),
        "at": pa.array(pd.to_datetime(["2024-07-01 12:00", "2024-07-01 12:10", "2024-01-05 08:00"]),
                       pa.timestamp("ns")),
        "sku": pa.array(["a", "b", "c"], pa.large_string()),  # as polars writes text
        "amount": [1.5, float("nan"), -2.0],
    })
    data = tmp_path / "orders.parquet"
    pq.write_table(table, data)
    mapping = write(tmp_path / "orders.yaml", "columns: {user_id: customer, ts: at, product_id: sku, price: amount}\n"
                    "constants: {event_type: purchase, brand: acme}\ntimestamp: {timezone: Europe/Berlin}\n")
    out = tmp_path / "out"
    report = load_events("parquet", [data], out, mapping=mapping)
    assert rejected_reasons(out) == {2: "negative_price"}
    rejected = pq.read_table(out / REJECTED_FILE).to_pandas()
    assert rejected.loc[0, "amount"] == "-2" and rejected.loc[0, "customer"] == "8"
    events = read_events(out)
    assert events["user_id"].tolist() == ["7", "7"] and events["brand"].tolist() == ["acme", "acme"]
    assert str(events["ts"].iloc[0]) == "2024-07-01 10:00:00+00:00"  # CEST is UTC+2
    assert events["session_id"].tolist() == ["7:0", "7:0"]
    assert pd.isna(events["price"].iloc[1])  # NaN is how pandas writes "no price"
    assert report.session_gap_minutes == 30


def test_load_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        load_events("rees46", [tmp_path / "x.csv"], tmp_path, colour="red")
    with pytest.raises(UserFacingError, match="ts_min: 'last tuesday' is not an ISO 8601"):
        load_events("rees46", [tmp_path / "x.csv"], tmp_path, ts_min="last tuesday")
    with pytest.raises(UserFacingError, match="--mapping applies to the csv and parquet formats"):
        load_events("rees46", [tmp_path / "x.csv"], tmp_path, mapping=tmp_path / "m.yaml")


def test_read_events_refuses_what_is_not_a_load(tmp_path: Path) -> None:
    with pytest.raises(UserFacingError, match="no events file"):
        read_events(tmp_path)
    pq.write_table(pa.table({"a": [1]}), tmp_path / EVENTS_FILE)
    with pytest.raises(UserFacingError, match="not a canonical events table"):
        read_events(tmp_path)


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    load_command.add_arguments(parser)
    return load_command.run(parser.parse_args(argv))


def test_cli_prints_the_summary(shop: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    data, mapping = shop
    out = tmp_path / "out"
    assert run_cli(["--format", "csv", str(data), "--mapping", str(mapping), "--out", str(out),
                    "--event-type", "teleport=cart"]) == 0
    printed = capsys.readouterr().out
    assert "14 rows read from 1 file -> 4 accepted, 10 rejected" in printed
    assert "missing_user_id 2" in printed and "cart 1" in printed
    assert (out / REPORT_FILE).is_file()
    with pytest.raises(UserFacingError, match="expected SOURCE=CANONICAL"):
        run_cli(["--format", "csv", str(data), "--out", str(out), "--event-type", "teleport"])


def test_the_help_lists_every_format() -> None:
    listed = load_command.__doc__.split("formats:")[1].split("examples:")[0]
    assert set(FORMAT_NAMES) <= set(listed.replace(",", " ").split())


def test_a_dataset_name_follows_its_data_unless_given() -> None:
    """`--config configs/taobao.yaml data.path=OTHER` must not name OTHER's runs and lineage "taobao-even-users"."""
    from pathlib import Path

    from cli.commands.run_options import run_overrides
    from cli.main import build_parser
    from events.config_io import load_config
    from training.config import TrainRunConfig

    taobao = str(Path(__file__).resolve().parents[1] / "configs" / "taobao.yaml")

    def name_of(*argv: str) -> str:
        args = build_parser().parse_args(["train", "--config", taobao, *argv])
        return load_config(TrainRunConfig, args.config, run_overrides(args)).data.name

    assert name_of() == "taobao-even-users"
    assert name_of("data.path=data/loaded/other") == ""  # then the folder's name: "other"
    assert name_of("data.path=data/loaded/other", "data.name=mine") == "mine"


def test_training_events_overlapping_a_test_file_are_counted_not_silently_lost(tmp_path, caplog) -> None:
    """With data.test_path, training rows at or after the test file's first event are set aside, and the
    run says how many (log and lineage)."""
    import logging

    from events.config_io import load_config
    from tests.factories import random_events, tiny_run_overrides, write_events
    from training.config import TrainRunConfig
    from training.in_memory import prepare_in_memory

    events = random_events(n_users=40, days=30, seed=4)
    test_start = events["ts"].min() + (events["ts"].max() - events["ts"].min()) * 0.8
    train_dir, test_dir = tmp_path / "train", tmp_path / "test"
    train_dir.mkdir()
    test_dir.mkdir()
    late = events[events["ts"] >= test_start]
    write_events(events, train_dir)  # the training file runs past the test start
    write_events(late, test_dir)
    cfg = load_config(TrainRunConfig, None, [*tiny_run_overrides(train_dir), f"data.test_path={test_dir}",
                                             "split.val_days=3"])
    with caplog.at_level(logging.WARNING):
        data = prepare_in_memory(cfg)
    assert data.lineage_counts()["train_events_after_test_start"] == len(late)
    assert f"{len(late)} of {len(events)} training events" in caplog.text


def test_secrets_in_uris_never_reach_params_or_logs() -> None:
    from events.config_io import loggable, redact_uri
    from training.config import TrainRunConfig

    assert redact_uri("postgresql://bob:s3cret@db:5432/optuna") == "postgresql://bob:***@db:5432/optuna"
    assert redact_uri("http://mlflow:8080/?token=abc&x=1") == "http://mlflow:8080/?token=***&x=1"
    assert redact_uri("sqlite:///mlruns/mlflow.db") == "sqlite:///mlruns/mlflow.db"
    cfg = TrainRunConfig()
    cfg.tracking.uri = "https://alice:hunter2@mlflow.internal"
    params = loggable(cfg)
    assert params["tracking.uri"] == "https://alice:***@mlflow.internal"
    assert not any("hunter2" in str(v) for v in params.values())


def test_a_time_range_that_admits_nothing_is_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(UserFacingError, match="ts_min 2019-11-01T00:00:00\\+00:00 is not before ts_max"):
        load_events("rees46", [tmp_path / "x.csv"], tmp_path / "out", ts_min="2019-11-01", ts_max="2019-10-01")
