"""A run whose process died (kill -9) is marked KILLED by the next run on the host, never left RUNNING."""
from __future__ import annotations

import socket
import subprocess
import sys

from mlflow import MlflowClient

from training import tracking
from training.config import TrackingConfig


def test_runs_of_dead_processes_are_marked_killed_and_live_ones_kept(tmp_path) -> None:
    cfg = TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="status")
    tracking.setup(cfg)
    client = MlflowClient()
    experiment = client.get_experiment_by_name("status").experiment_id
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = client.create_run(experiment, tags={tracking.PROCESS_TAG: f"{socket.gethostname()}:{gone.stdout.strip()}:0"})
    live = client.create_run(experiment, tags=tracking.process_tags())
    elsewhere = client.create_run(experiment, tags={tracking.PROCESS_TAG: "another-host:1:0"})

    tracking.setup(cfg)  # what the next `signals train` does first
    status = {run: client.get_run(run.info.run_id).info.status for run in (dead, live, elsewhere)}
    assert status[dead] == "KILLED" and status[live] == "RUNNING" and status[elsewhere] == "RUNNING"
    assert client.get_run(dead.info.run_id).data.tags["ended_by"]
