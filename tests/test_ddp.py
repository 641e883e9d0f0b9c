"""A real two-process DDP training on CPU (gloo): both ranks train their shard, one model is registered."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.factories import random_events, tiny_run_overrides, write_events

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[1]


def test_two_process_ddp_trains_on_both_ranks_and_registers_once(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_events(random_events(n_users=80, days=30), data)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cmd = [sys.executable, "-m", "cli.main", "train", *tiny_run_overrides(data),
           "train.max_epochs=1", "train.progress_bar=false", "baselines.enabled=false",
           f"tracking.uri={uri}", f"output_dir={tmp_path}/out", "--strategy", "ddp", "--devices", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    reports = [json.loads(p.read_text()) for p in sorted((tmp_path / "out" / "ddp").glob("rank-*.json"))]
    assert [r["global_rank"] for r in reports] == [0, 1]
    assert all(r["world_size"] == 2 and r["train_batches"] > 0 for r in reports)

    client = MlflowClient(tracking_uri=uri)
    versions = client.search_model_versions("name='session-signals'")
    assert len(versions) == 1
    assert client.get_run(versions[0].run_id).data.params["train.strategy"] == "ddp"
