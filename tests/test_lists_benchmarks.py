"""The lists' benchmark scripts (benchmarks/flavours/) run with the current code, at tiny sizes, each as its
own process (as tests/test_benchmarks_smoke.py does for the others). Figures are not checked."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_benchmarks_smoke import run


def test_basket_completion_on_real_invoices(tmp_path: Path, shared_datasets: Path) -> None:
    out = run(["-m", "benchmarks.flavours.complements", "--invoices", "100", "--data",
               str(shared_datasets / "online-retail" / "online_retail_I_2010-2011.parquet"),
               "--json", str(tmp_path / "c.json")], tmp_path)
    methods = json.loads((tmp_path / "c.json").read_text())["methods"]
    assert set(methods) == {"complementary", "co-purchase counts", "popularity"} and "HitRate@10" in out


def test_trending_against_all_time_popularity(tmp_path: Path, shared_datasets: Path) -> None:
    run(["-m", "benchmarks.flavours.trending", "--weeks", "2", "--data",
         str(shared_datasets / "online-retail" / "online_retail_I_2010-2011.parquet"),
         "--json", str(tmp_path / "t.json")], tmp_path)
    assert len(json.loads((tmp_path / "t.json").read_text())["weeks"]) == 2


@pytest.mark.e2e
def test_serving_cost_of_the_lists(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SIGNALS_WORKERS", "1")
    run(["-m", "benchmarks.flavours.serving_lists", "--products", "500", "--repeats", "10", "--duration", "2",
         "--users", "1", "--json", str(tmp_path / "s.json")], tmp_path)
    figures = json.loads((tmp_path / "s.json").read_text())
    assert [r["variant"] for r in figures["http"]] == ["old answer", "all lists"]
    assert all(r["requests"] > 0 and r["failures"] == 0 for r in figures["http"])
