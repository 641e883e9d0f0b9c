"""Served uplift end to end (issue 14, point 6): a tiny treated shop simulated, a model trained and registered
into a private store, `signals uplift` run as a subprocess on the registered version (registering the model
with its head as @uplift), that version served from the registry by a real `bentoml serve` and asked over
HTTP, and `signals score` writing the uplift audiences.
Also the benchmark script at a tiny size (it must run with the current code)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest

from events.config_io import load_config
from events.simulator import load_simulator_config, simulate
from serving.process import free_port, start_server, stop_server, wait_until_ready
from training.config import TrainRunConfig
from training.train import train

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
SHOP = ["days=20", "n_users=300", "catalogue.n_products=600", "catalogue.n_categories=20", "catalogue.n_brands=40",
        "treatment.enabled=true", "seed=3"]


def signals(*args: str, cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done.stdout


@pytest.fixture(scope="module")
def uplift_bundle(tmp_path_factory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("uplift")
    simulate(load_simulator_config(None, SHOP), work / "shop")
    store = f"sqlite:///{work}/mlflow.db"
    train(load_config(TrainRunConfig, None, [
        f"data.path={work / 'shop'}", "split.val_days=4", "split.test_days=4", "labels.churn_horizon_days=4",
        "labels.churn_lookback_days=8", "baselines.enabled=false", "train.max_epochs=1", "train.progress_bar=false",
        f"tracking.uri={store}", "model.d_model=16", "model.max_len=20", f"output_dir={work}/runs"]))
    out = signals("uplift", str(work / "shop"), "fit.max_epochs=3", "--model", "1", "--out", str(work / "out"),
                  "--tracking-uri", store, cwd=work)
    assert "| oracle |" in out and "| highest_intent |" in out and "| lightgbm_t_learner |" in out
    results = json.loads((work / "out" / "uplift_results.json").read_text())
    assert results["chosen"] == "wide" and set(results["validation"]) == {"wide"}  # the default: one design, frozen
    assert results["test"]["oracle"]["true_qini_over_oracle"] == 1.0
    assert "registered as session-signals version 2, alias uplift" in out
    return work, work / "out" / "bundle"


def test_predict_answers_uplift_and_the_persuadable_segment(uplift_bundle) -> None:
    work, _ = uplift_bundle
    events = pd.read_parquet(work / "shop" / "events.parquet")
    user = events[events.user_id == events.user_id.iloc[0]].tail(10)
    shopper = {"user_id": "u", "events": [{"ts": t.isoformat(), "event_type": e, "product_id": p, "price": pr}
                                          for t, e, p, pr in zip(user.ts, user.event_type, user.product_id, user.price)]}
    port = free_port()
    proc = start_server(port, {"SIGNALS_MODEL_ALIAS": "uplift", "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db",
                               "BENTOML_HOME": str(work / "bentoml"), "SIGNALS_WORKERS": "1",
                               "SIGNALS_SEGMENT_OVERRIDES": "persuadable.min_uplift=-1"},
                        log_file=work / "server.log")
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", timeout_s=120, proc=proc)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0)
        answer = client.post("/predict", json=shopper).json()
        empty = client.post("/predict", json={"events": []}).json()
    finally:
        stop_server(proc)
    assert answer["model"]["version"] == "2"  # the registered version with the head, not the base
    assert isinstance(answer["uplift"], float) and -1 < answer["uplift"] < 1
    assert "persuadable" in answer["segments"]  # every uplift clears a threshold of -1
    assert empty["uplift"] is None


def test_score_writes_the_uplift_audiences(uplift_bundle) -> None:
    work, bundle = uplift_bundle
    signals("score", str(work / "shop"), "--out", str(work / "audiences"), "--model", str(bundle),
            "--tracking-uri", f"sqlite:///{work}/mlflow.db", cwd=work)
    customers = pd.read_parquet(work / "audiences" / "customers.parquet")
    message = pd.read_parquet(work / "audiences" / "audiences" / "message_these.parquet")
    quiet = pd.read_parquet(work / "audiences" / "audiences" / "do_not_disturb.parquet")
    assert customers.uplift.notna().all()
    assert set(message.user_id) == set(customers.user_id[customers.uplift > 0])
    assert set(quiet.user_id) == set(customers.user_id[customers.uplift < 0])


def test_the_benchmark_script_runs(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "uplift" / "run.py"), "--events", "6000",
                           "--seeds", "1", "--set", "train.max_epochs=1", "--set", "model.d_model=16",
                           "--workdir", str(tmp_path), "--results", str(tmp_path / "RESULTS.md")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-5000:]
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| oracle |" in text and "| model_chosen_on_validation |" in text and "| wide_taught |" in text
