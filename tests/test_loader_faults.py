"""Hostile inputs to `signals load`: every bad value a counted rejection with its own reason, every bad file or
mapping a UserFacingError naming it, and never a traceback or a row silently lost."""
from __future__ import annotations

import datetime as dt
import gzip
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from events.errors import UserFacingError
from events.loaders import LoadReport, load_events, read_events
from events.schema import REJECTED_FILE

REES46 = Path(__file__).parents[1] / "data" / "samples" / "rees46-2019-Oct-head.csv"
REES46_ROWS = 5019
BRAND = 5  # field index of `brand` in a REES46 row


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def reasons(out: Path) -> dict[int, str]:
    rejected = pq.read_table(out / REJECTED_FILE, columns=["source_row", "reason"]).to_pydict()
    return dict(zip(rejected["source_row"], rejected["reason"], strict=True))


def accounted(report: LoadReport, rows: int) -> None:
    assert report.rows_read == rows == report.rows_accepted + report.rows_rejected


def rees46_with(edits: dict[int, str | None]) -> str:
    """The shipped REES46 sample with the brand of some data rows replaced (None: the row as it is)."""
    header, *rows = REES46.read_text().splitlines(keepends=True)
    for row, brand in edits.items():
        fields = rows[row].split(",")
        fields[BRAND] = brand
        rows[row] = ",".join(fields)
    return header + "".join(rows)


# ---- times out of bounds: a counted rejection with its own reason, in every format ----------------------------

MS_MAPPING = "columns: {user_id: u, ts: t, event_type: e, product_id: p}\ntimestamp: {unit: ms}\n"
S_MAPPING = MS_MAPPING.replace("unit: ms", "unit: s")
ISO_MAPPING = "columns: {user_id: u, ts: t, event_type: e, product_id: p}\n"


def _yoochoose_prepared(tmp: Path) -> list[Path]:
    times = ["1396321232.5", "253402300800", "-1", "-99999999999999", "1e300", "nan", "1396321299"]
    return [write(tmp / "clicks.txt", "SessionId\tItemId\tTime\n" + "".join(f"1\t{i}\t{t}\n" for i, t in
                                                                             enumerate(times)))]


def _yoochoose_original(tmp: Path) -> list[Path]:
    times = ["2014-04-07T10:51:09.277Z", "10000-01-01T00:00:00.000Z", "1600-04-07T10:51:09.277Z",
             "9999-12-31T23:59:59.999Z", "not-a-time", "2014-04-07T11:00:00Z"]
    return [write(tmp / "yoochoose-clicks.dat", "".join(f"1,{t},{i},0\n" for i, t in enumerate(times)))]


def _diginetica(tmp: Path) -> list[Path]:
    rows = [("526309", "2016-05-09"), ("99999999999999999999", "2016-05-09"), ("9000000000000000", "2016-05-09"),
            ("1000", "9999-12-31"), ("-5", "2016-05-09"), ("1e300", "2016-05-09"), ("5", "2016-05-10")]
    return [write(tmp / "views.csv", "session_id;user_id;item_id;timeframe;eventdate\n"
                  + "".join(f"1;NA;{i};{frame};{day}\n" for i, (frame, day) in enumerate(rows)))]


def _mapped_csv_ms(tmp: Path) -> list[Path]:
    times = ["1500000000000", "1e20", "-1e20", "nan", "-5", "253402300800000", "1500000000001"]
    return [write(tmp / "shop.csv", "u,t,e,p\n" + "".join(f"1,{t},view,{i}\n" for i, t in enumerate(times)))]


def _mapped_parquet_s(tmp: Path) -> list[Path]:
    times = [1.5e9, 1e15, -1.0, float("nan"), -1e300, 1.6e9]
    path = tmp / "shop.parquet"
    pq.write_table(pa.table({"u": ["1"] * 6, "t": times, "e": ["view"] * 6, "p": [str(i) for i in range(6)]}), path)
    return [path]


def _mapped_parquet_typed(tmp: Path) -> list[Path]:
    # Parquet stores seconds as milliseconds; 2**60 ms is far beyond int64 microseconds
    times = pa.array([1_500_000_000_000, 2**60, -(2**60), -1000, 1_600_000_000_000], pa.timestamp("ms", tz="UTC"))
    path = tmp / "typed.parquet"
    pq.write_table(pa.table({"u": ["1"] * 5, "t": times, "e": ["view"] * 5, "p": [str(i) for i in range(5)]}), path)
    return [path]


def _mapped_parquet_dates(tmp: Path) -> list[Path]:
    days = pa.array([dt.date(2019, 1, 1), dt.date(9999, 12, 31), dt.date(1, 1, 1), dt.date(2019, 1, 2)])
    path = tmp / "dates.parquet"
    pq.write_table(pa.table({"u": ["1"] * 4, "t": days, "e": ["view"] * 4, "p": [str(i) for i in range(4)]}), path)
    return [path]


def _online_retail_csv(tmp: Path) -> list[Path]:
    times = ["12/1/2010 8:26", "10000-01-01 00:00:00", "1500-01-01 00:00:00", "12/1/2010 9:00"]
    lines = [f"5363{i},8512{i}A,HEART,6,{t},2.55,17850,United Kingdom" for i, t in enumerate(times)]
    header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    return [write(tmp / "online_retail.csv", header + "\n".join(lines) + "\n")]


def _taobao(tmp: Path) -> list[Path]:
    times = ["1511600000", "-1511600000", "99999999999999999999", "1511600001"]
    return [write(tmp / "ub.csv", "".join(f"1,{i},7,pv,{t}\n" for i, t in enumerate(times)))]


def _rees46(tmp: Path) -> list[Path]:
    header, first, second, *_ = REES46.read_text().splitlines(keepends=True)
    return [write(tmp / "rees46.csv", header + first + second.replace("2019-10-01", "1600-10-01", 1)
                  + first.replace("2019-10-01", "2262-10-01", 1))]


OUT_OF_BOUNDS = "timestamp_out_of_bounds"
TIME_CASES = {  # format, files, mapping, {data row: reason}
    "yoochoose prepared (epoch s)": ("yoochoose", _yoochoose_prepared, None,
                                     {1: OUT_OF_BOUNDS, 2: OUT_OF_BOUNDS, 3: OUT_OF_BOUNDS, 4: OUT_OF_BOUNDS,
                                      5: "bad_timestamp"}),
    "yoochoose original (ISO)": ("yoochoose", _yoochoose_original, None,
                                 {1: OUT_OF_BOUNDS, 2: OUT_OF_BOUNDS, 3: OUT_OF_BOUNDS, 4: "bad_timestamp"}),
    "diginetica": ("diginetica", _diginetica, None,
                   {1: OUT_OF_BOUNDS, 2: OUT_OF_BOUNDS, 3: OUT_OF_BOUNDS, 4: "bad_timestamp", 5: OUT_OF_BOUNDS}),
    "csv + mapping (epoch ms)": ("csv", _mapped_csv_ms, MS_MAPPING,
                                 {1: OUT_OF_BOUNDS, 2: OUT_OF_BOUNDS, 3: "bad_timestamp", 4: OUT_OF_BOUNDS,
                                  5: OUT_OF_BOUNDS}),
    "parquet + mapping (epoch s)": ("parquet", _mapped_parquet_s, S_MAPPING,
                                    {1: OUT_OF_BOUNDS, 2: OUT_OF_BOUNDS, 3: "bad_timestamp", 4: OUT_OF_BOUNDS}),
    "parquet + mapping (timestamps)": ("parquet", _mapped_parquet_typed, ISO_MAPPING,
                                       {1: OUT_OF_BOUNDS, 2: OUT_OF_BOUNDS, 3: OUT_OF_BOUNDS}),
    "parquet + mapping (dates)": ("parquet", _mapped_parquet_dates, ISO_MAPPING, {1: OUT_OF_BOUNDS, 2: OUT_OF_BOUNDS}),
    "online-retail (CSV)": ("online-retail", _online_retail_csv, None, {1: OUT_OF_BOUNDS, 2: OUT_OF_BOUNDS}),
    "taobao": ("taobao", _taobao, None, {1: OUT_OF_BOUNDS, 2: OUT_OF_BOUNDS}),
    "rees46": ("rees46", _rees46, None, {1: OUT_OF_BOUNDS, 2: OUT_OF_BOUNDS}),
}


@pytest.mark.parametrize("case", TIME_CASES)
def test_times_out_of_bounds_are_rejected_by_name_in_every_format(case: str, tmp_path: Path) -> None:
    format_name, make, mapping, expected = TIME_CASES[case]
    inputs = make(tmp_path)
    options = {"mapping": write(tmp_path / "m.yaml", mapping)} if mapping else {}
    report = load_events(format_name, inputs, tmp_path / "out", **options)
    assert reasons(tmp_path / "out") == expected
    rows = sum(item.rows_read for item in report.inputs)
    accounted(report, rows)
    assert report.rows_accepted == rows - len(expected) > 0
    times = read_events(tmp_path / "out")["ts"]
    assert times.min() >= dt.datetime(1970, 1, 1, tzinfo=dt.UTC) and times.max() < dt.datetime(2262, 4, 11,
                                                                                                 tzinfo=dt.UTC)


# ---- Parquet columns without a text form -------------------------------------------------------------------------

def test_a_mapped_parquet_column_of_lists_is_an_error_naming_file_and_column(tmp_path: Path) -> None:
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"u": ["1"], "t": [1_500_000_000], "e": ["view"], "p": [["a", "b"]]}), path)
    with pytest.raises(UserFacingError, match=r"nested\.parquet: column 'p' \(for product_id\) is of type list"):
        load_events("parquet", [path], tmp_path / "out", mapping=write(tmp_path / "m.yaml", S_MAPPING))
    assert not (tmp_path / "out").exists()  # stopped before any work


def test_an_unmapped_struct_column_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "extra.parquet"
    pq.write_table(pa.table({"u": ["1", None], "t": [1_500_000_000] * 2, "e": ["view"] * 2, "p": ["a", "b"],
                             "extra": [{"k": 1}, {"k": 2}], "m": [[("x", 1)], []]},
                            schema=pa.schema([("u", pa.string()), ("t", pa.int64()), ("e", pa.string()),
                                              ("p", pa.string()), ("extra", pa.struct([("k", pa.int64())])),
                                              ("m", pa.map_(pa.string(), pa.int64()))])), path)
    report = load_events("parquet", [path], tmp_path / "out", mapping=write(tmp_path / "m.yaml", S_MAPPING))
    accounted(report, 2)
    assert reasons(tmp_path / "out") == {1: "missing_user_id"}
    assert "extra" not in pq.read_schema(tmp_path / "out" / REJECTED_FILE).names


def test_a_parquet_column_that_cannot_be_read_names_file_rows_and_column(tmp_path: Path) -> None:
    path = tmp_path / "binary.parquet"
    pq.write_table(pa.table({"u": ["1", "2"], "t": [1_500_000_000] * 2, "e": ["view"] * 2,
                             "p": pa.array([b"ok", b"\xff\xfe"], pa.binary())}), path)
    with pytest.raises(UserFacingError, match=r"binary\.parquet: data rows 0 to 1: column 'p': .*UTF8"):
        load_events("parquet", [path], tmp_path / "out", mapping=write(tmp_path / "m.yaml", S_MAPPING))


# ---- mapping files -------------------------------------------------------------------------------------------------

BAD_MAPPINGS = {  # mapping text -> what the error must name besides the file
    "columns: {user_id: u\n  ts: [": "not valid YAML",
    "columns:\n  user_id: u\n ts: t\n": r"not valid YAML: .*line 3",
    "- columns\n- timestamp\n": "top level must be a mapping",
    "just text": "top level must be a mapping",
    ISO_MAPPING + "colums: {}\n": "colums",
    ISO_MAPPING + "timestamp: {fromat: '%Y'}\n": "timestamp.fromat",
    "columns: {user_id: u, event_type: e, product_id: p}\n": "columns.ts is required",
    "columns: [u, t, e, p]\n": "columns",
    ISO_MAPPING + "columns: {user_id: v}\n": "key 'columns' is given twice",
    ISO_MAPPING + "constants: {brand: {name: acme}}\n": "constants.brand",
    ISO_MAPPING + "ts_min: [2019]\n": "ts_min",
    ISO_MAPPING + "csv: {delimiter: ';;'}\n": "csv.delimiter",
    ISO_MAPPING + "csv: {encoding: klingon}\n": "csv.encoding",
    ISO_MAPPING + "timestamp: {timezone: Mars/Olympus}\n": "timestamp.timezone",
    "!!python/object:os.system {}\n": "not valid YAML",
}


@pytest.mark.parametrize("text", BAD_MAPPINGS)
def test_an_invalid_mapping_is_an_error_naming_the_file_and_key(text: str, tmp_path: Path) -> None:
    data = write(tmp_path / "shop.csv", "u,t,e,p\n1,2019-01-01 00:00:00,view,1\n")
    mapping = write(tmp_path / "shop-mapping.yaml", text)
    with pytest.raises(UserFacingError, match=r"shop-mapping\.yaml") as raised:
        load_events("csv", [data], tmp_path / "out", mapping=mapping)
    assert re.search(BAD_MAPPINGS[text], str(raised.value)), str(raised.value)


def test_a_mapping_that_is_not_text_is_an_error_naming_it(tmp_path: Path) -> None:
    data = write(tmp_path / "shop.csv", "u,t,e,p\n1,2019-01-01 00:00:00,view,1\n")
    with pytest.raises(UserFacingError, match=r"m\.yaml: not UTF-8"):
        load_events("csv", [data], tmp_path / "out", mapping=write(tmp_path / "m.yaml", b"columns: \xff\xfe"))


# ---- CSV quotes and sizes: one bad row is one rejected row ------------------------------------------------------

CHUNKS = [16 * 1024 * 1024, 4096]


@pytest.mark.parametrize("chunk_bytes", CHUNKS)
def test_an_unterminated_quote_rejects_its_row_and_the_rest_loads(chunk_bytes: int, tmp_path: Path) -> None:
    path = write(tmp_path / "rees46.csv", rees46_with({100: '"samsung'}))
    report = load_events("rees46", [path], tmp_path / "out", chunk_bytes=chunk_bytes)
    assert reasons(tmp_path / "out") == {100: "unterminated_quote"}
    accounted(report, REES46_ROWS)
    assert report.rows_accepted == REES46_ROWS - 1


@pytest.mark.parametrize("chunk_bytes", CHUNKS)
def test_stray_quotes_do_not_join_the_rows_between_them(chunk_bytes: int, tmp_path: Path) -> None:
    # the second quote closes the first: read naively, rows 200-204 would be one row with all the fields
    path = write(tmp_path / "rees46.csv", rees46_with({200: '"apple', 204: 'sams"ung', 3000: '"x', 3001: '"y'}))
    report = load_events("rees46", [path], tmp_path / "out", chunk_bytes=chunk_bytes)
    got = reasons(tmp_path / "out")
    assert got == {200: "unterminated_quote", 3000: "unterminated_quote", 3001: "unterminated_quote"}
    accounted(report, REES46_ROWS)
    brands = read_events(tmp_path / "out")["brand"].tolist()
    assert 'sams"ung' in brands  # a quote inside a value is a character


@pytest.mark.parametrize("chunk_bytes", CHUNKS)
def test_a_quote_opened_after_one_inside_a_value_is_found(chunk_bytes: int, tmp_path: Path) -> None:
    # two quotes on the line (even), yet the second opens a value that never closes
    header, *rows = REES46.read_text().splitlines(keepends=True)
    fields = rows[20].split(",")
    fields[4], fields[BRAND] = 'electronics."phone', '"acme'
    rows[20] = ",".join(fields)
    path = write(tmp_path / "rees46.csv", header + "".join(rows))
    report = load_events("rees46", [path], tmp_path / "out", chunk_bytes=chunk_bytes)
    assert reasons(tmp_path / "out") == {20: "unterminated_quote"}
    accounted(report, REES46_ROWS)


@pytest.mark.parametrize("size", [70 * 1024, 3 * 1024 * 1024])
def test_a_huge_field_rejects_its_row_and_the_rest_loads(size: int, tmp_path: Path) -> None:
    path = write(tmp_path / "rees46.csv", rees46_with({50: "x" * size, 51: '"' + "y" * size + '"'}))
    report = load_events("rees46", [path], tmp_path / "out", chunk_bytes=1024 * 1024)
    assert reasons(tmp_path / "out") == {50: "row_too_large", 51: "row_too_large"}
    accounted(report, REES46_ROWS)
    kept = pq.read_table(tmp_path / "out" / REJECTED_FILE).column("raw_line").to_pylist()
    assert all(len(text) < 2000 for text in kept)  # the start of the row and its size, not all of it


def test_quoted_line_breaks_crlf_blank_lines_and_gzip_keep_rows_and_numbers(tmp_path: Path) -> None:
    text = rees46_with({10: '"acme\nbrand"', 100: '"samsung'}).replace("\n", "\r\n")
    header, rest = text.split("\r\n", 1)
    text = header + "\r\n\r\n" + rest.replace("\r\n", "\r\n\r\n", 3)  # blank lines are no rows
    path = tmp_path / "rees46.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    report = load_events("rees46", [path], tmp_path / "out")
    assert reasons(tmp_path / "out") == {100: "unterminated_quote"}
    accounted(report, REES46_ROWS)
    events = read_events(tmp_path / "out")
    assert events["brand"].iloc[10] == "acme\r\nbrand"


def test_a_latin1_file_with_a_quote_fault(tmp_path: Path) -> None:
    mapping = write(tmp_path / "m.yaml", ISO_MAPPING + "csv: {encoding: latin-1}\n")
    rows = ["1,2019-01-01T00:00:00,view,café", '1,2019-01-01T00:01:00,view,"crème', "1,2019-01-01T00:02:00,view,thé"]
    path = write(tmp_path / "shop.csv", ("u,t,e,p\n" + "\n".join(rows) + "\n").encode("latin-1"))
    report = load_events("csv", [path], tmp_path / "out", mapping=mapping)
    assert reasons(tmp_path / "out") == {1: "unterminated_quote"}
    accounted(report, 3)
    assert read_events(tmp_path / "out")["product_id"].tolist() == ["café", "thé"]


def test_a_csv_that_is_not_utf8_names_the_file_and_row(tmp_path: Path) -> None:
    path = write(tmp_path / "shop.csv", b"u,t,e,p\n1,2019-01-01T00:00:00,view,a\n1,2019-01-01T00:00:00,view,\xff\n")
    with pytest.raises(UserFacingError, match=r"shop\.csv: data row 1"):
        load_events("csv", [path], tmp_path / "out", mapping=write(tmp_path / "m.yaml", ISO_MAPPING))
