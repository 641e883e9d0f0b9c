"""Every benchmark script runs with the current code: each one once, at tiny sizes, as its own process.

The figures are not checked (too small to mean anything), only that the script finishes (exit 0) and
prints or writes them. Outputs go to tmp_path, never into the committed results under benchmarks/.
Scripts that read a data folder relative to the working directory (data/generated/) run in tmp_path.
Those that import torch and train, compile or serve are marked e2e (each takes 10-40 s here); the whole
file takes 2.7-3.2 min on this shared 2-core machine (load average 3-6; 1.6 min of CPU).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO_ROOT / "benchmarks"


def run(args: list[str], cwd: Path, timeout_s: float = 300) -> str:
    """Run `python ARGS` in cwd with this checkout importable; returns stdout, fails with the output's tail."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False,
                          timeout=timeout_s)
    assert done.returncode == 0, (f"exit {done.returncode}: {' '.join(args)}\n--- stdout\n{done.stdout[-3000:]}"
                                  f"\n--- stderr\n{done.stderr[-5000:]}")
    return done.stdout


def table_rows(stdout: str) -> list[str]:
    """The data rows of the markdown tables a benchmark printed."""
    return [line for line in stdout.splitlines()
            if line.startswith("|") and not line.startswith("|---") and not line.startswith("| ---")]


# --- data: loader and simulator --------------------------------------------------------------------------


def test_loader_bench(tmp_path: Path) -> None:
    out = run([str(BENCHMARKS / "loader_bench.py"), "--rows", "6000", "--workdir", str(tmp_path / "work")], tmp_path)
    rows = [r for r in table_rows(out) if "6,000" in r]
    assert len(rows) == 2 and "rows/s" in rows[0] and "MiB" in rows[0], out
    assert not list((tmp_path / "work").glob("*.csv")), "the generated CSV is removed without --keep"


def test_simulator_bench(tmp_path: Path) -> None:
    out = run([str(BENCHMARKS / "simulator_bench.py"), "--events", "3000", "--out", str(tmp_path / "sim")], tmp_path)
    rows = table_rows(out)
    assert len(rows) == 2 and rows[0].startswith("| events"), out  # header + one size
    assert (tmp_path / "sim" / "sim-3000" / "events.parquet").is_file()


# --- serving ---------------------------------------------------------------------------------------------


def test_realistic_bundle(tmp_path: Path) -> None:
    run(["-m", "benchmarks.serving.realistic_bundle", str(tmp_path / "bundle"), "--products", "500"], tmp_path)
    from models.bundle import load_bundle

    model, encoder, meta = load_bundle(tmp_path / "bundle")
    assert len(encoder.products) == 500 + 2 and len(meta["popularity_log_prob"]) == 502
    assert model.cfg.max_len == 50


@pytest.mark.e2e
def test_serving_compile_check(tmp_path: Path) -> None:
    out = run(["-m", "benchmarks.serving.compile_check", "--products", "500", "--repeats", "5", "--batches", "1"],
              tmp_path)
    rows = table_rows(out)
    assert len(rows) == 2 and rows[1].startswith("| 1 |"), out  # eager, traced and compiled agreed and were timed


@pytest.mark.e2e
def test_serving_run(tmp_path: Path) -> None:
    """A real `bentoml serve` (one worker) and locust (benchmarks/serving/locustfile.py) for 2 s at 1 and 2 clients."""
    out = run(["-m", "benchmarks.serving.run", "--products", "500", "--repeats", "10", "--duration", "2",
               "--users", "1", "2", "--env", "SIGNALS_WORKERS=1", "--json", str(tmp_path / "serving.json")], tmp_path)
    assert "in process (1 shopper)" in out, out
    figures = json.loads((tmp_path / "serving.json").read_text())
    assert [r["users"] for r in figures["http"]] == [1, 2]
    for r in figures["http"]:
        assert r["requests"] > 0 and r["failures"] == 0, r
    assert figures["in_process"]["engine_p50_ms"] > 0


# --- training --------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_training_loader(tmp_path: Path) -> None:
    out = run([str(BENCHMARKS / "training" / "loader.py"), "--events", "4000", "--workers", "0", "--batch", "32",
               "--batches", "2", "--repeats", "1", "--json", str(tmp_path / "loader.json")], tmp_path)
    assert "gathered / per-window at 0 workers" in out, out
    results = json.loads((tmp_path / "loader.json").read_text())
    assert {r["path"] for r in results} == {"gathered", "per-window"}
    assert all(r["events_per_s"] > 0 for r in results)


@pytest.mark.e2e
def test_training_throughput_eager(tmp_path: Path) -> None:
    out = run([str(BENCHMARKS / "training" / "throughput.py"), "--device", "cpu", "--products", "300",
               "--encoders", "gru", "transformer", "--losses", "sampled", "full", "--modes", "eager", "--batch", "4",
               "--window", "8", "--d-model", "16", "--negatives", "32", "--steps", "2", "--warmup", "1",
               "--repeats", "1", "--n-batches", "1", "--json", str(tmp_path / "thr.json")], tmp_path)
    results = json.loads((tmp_path / "thr.json").read_text())
    assert len(results) == 4 and all(r["events_per_s"] > 0 for r in results), out


@pytest.mark.e2e
def test_training_throughput_lightning(tmp_path: Path) -> None:
    """`Trainer.fit` on the module's compiled step (compiling costs about a minute on a cold inductor cache)."""
    out = run([str(BENCHMARKS / "training" / "throughput.py"), "--device", "cpu", "--products", "300",
               "--encoders", "gru", "--losses", "sampled", "--modes", "lightning", "--batch", "4",
               "--window", "8", "--d-model", "16", "--negatives", "32", "--steps", "2", "--warmup", "1",
               "--repeats", "1", "--n-batches", "1", "--json", str(tmp_path / "thr.json")], tmp_path)
    results = json.loads((tmp_path / "thr.json").read_text())
    assert [r["mode"] for r in results] == ["lightning"] and results[0]["events_per_s"] > 0, out


@pytest.mark.e2e
def test_sampled_vs_full_eval_check(tmp_path: Path) -> None:
    out = run([str(BENCHMARKS / "training" / "sampled_vs_full.py"), "--eval-check", "--eval-products", "5000",
               "--eval-queries", "50", "--json", str(tmp_path / "eval.json")], tmp_path)
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["ranks_ok"] and result["products"] == 5000, out


@pytest.mark.e2e
def test_sampled_vs_full(tmp_path: Path) -> None:
    out = run([str(BENCHMARKS / "training" / "sampled_vs_full.py"), "--device", "cpu", "--events", "4000",
               "--products", "300", "--epochs", "1", "--negatives", "32", "--workers", "0", "--batch", "64",
               "--d-model", "16", "--data", str(tmp_path / "data"), "--json", str(tmp_path / "svf.json")], tmp_path)
    assert "rel. recall" in out, out
    summary = json.loads((tmp_path / "svf.json").read_text())["summary"]
    assert [(r["loss"], r["negatives"]) for r in summary] == [("full", None), ("sampled", 32)]


@pytest.mark.e2e
def test_streaming_memory(tmp_path: Path) -> None:
    out = run([str(BENCHMARKS / "training" / "streaming_memory.py"), "--simulate", "8000", "--sizes", "8000",
               "--in-memory-max", "8000", "--train-batches", "2", "--eval", "--work", str(tmp_path / "work"),
               "--json", str(tmp_path / "smem.json")], tmp_path)
    rows = json.loads((tmp_path / "smem.json").read_text())
    assert [r["phase"] for r in rows] == ["repartition", "stream", "in-memory"], out
    assert not any("error" in r for r in rows), rows
    stream = rows[1]
    assert stream["train_steps"] >= 1 and stream["test_next_n"] > 0 and stream["peak_rss_gib"] > 0


# --- quality ---------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_quality(tmp_path: Path) -> None:
    """The simulated dataset only (no ../shared datasets), a few thousand events, one epoch."""
    out = run([str(BENCHMARKS / "quality" / "run.py"), "--only", "simulated-200k", "--events", "3000",
               "--set", "train.max_epochs=1", "--set", "model.d_model=16", "--workdir", str(tmp_path / "work"),
               "--results", str(tmp_path / "results"), "--mlruns", str(tmp_path / "mlruns")], tmp_path)
    table = (tmp_path / "results" / "simulated-200k.md").read_text()
    for method in ("model", "base_rate", "lightgbm_intent", "popularity", "vsknn", "oracle"):
        assert f"| {method} |" in table, table
    assert "| model |" in out


@pytest.mark.e2e
def test_quality_ablation(tmp_path: Path) -> None:
    """The ablation runner: validation and test metrics per seed, and the refit on train + validation."""
    run([str(BENCHMARKS / "quality" / "ablate.py"), "--name", "smoke", "--config", str(REPO_ROOT / "configs" / "default.yaml"),
         "--set", "data.simulate_events=3000", "--set", "train.max_epochs=1", "--set", "model.d_model=16",
         "--refit", "--results", str(tmp_path / "results")], tmp_path)
    row = json.loads((tmp_path / "results" / "ablation.jsonl").read_text().splitlines()[-1])
    assert row["name"] == "smoke" and "next_mrr_at_20" in row["val"] and "next_mrr_at_20" in row["test_refit"]
    # the refitted model is compared with baselines refit on the same merged window
    assert "next_mrr_at_20" in json.loads((tmp_path / "results" / "demo-refit-baselines.json").read_text())["vsknn"]
    out = run([str(BENCHMARKS / "quality" / "ablation_table.py"), str(tmp_path / "results" / "ablation.jsonl")],
              tmp_path)
    assert "test refit next MRR@20" in out and "refit on train + validation" in out, out
    # the nested data for the refit's choice: the test window is dropped, the split counts back again
    out = run([str(BENCHMARKS / "quality" / "nested_data.py"), str(tmp_path / "data" / "generated" /
               "sim-3000-seed7-h7"), str(tmp_path / "nested")], tmp_path)
    dates = json.loads(out)
    assert dates["kept"] < dates["events"] and dates["nested_test_start"] < dates["real_test_start"], dates
    assert (tmp_path / "nested" / "simulation.json").is_file()
