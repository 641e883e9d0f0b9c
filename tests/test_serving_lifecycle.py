"""`signals serve` as an operator drives it: a real server in a subprocess, real signals sent to it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from models.bundle import save_bundle
from models.encoding import EventEncoder
from models.network import ModelConfig, SessionSignalsModel
from serving.process import free_port, wait_until_ready
from tests.factories import random_events

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    events = random_events(n_users=20, days=10).sort_values(["user_id", "ts"], kind="stable")
    encoder = EventEncoder.fit(events)
    model = SessionSignalsModel(ModelConfig(**encoder.sizes(), d_model=16, max_len=20))
    n = len(encoder.products)
    meta = {"intent_base_rate": 0.2, "churn_base_rate": 0.4, "churn_horizon_days": 7,
            "popularity_log_prob": [-1e9, -1e9] + [float(np.log(1 / (n - 2)))] * (n - 2),
            "category_prior": [0, 0] + [1 / (len(encoder.categories) - 2)] * (len(encoder.categories) - 2),
            "brand_prior": [0, 0] + [1 / (len(encoder.brands) - 2)] * (len(encoder.brands) - 2)}
    return save_bundle(tmp_path_factory.mktemp("bundle") / "tiny", model, encoder, meta)


def signals_serve(*args: str, home: Path) -> subprocess.Popen:
    env = {**os.environ, "SIGNALS_WORKERS": "1", "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "serve", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def family(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_sigterm_stops_the_server_and_every_worker(bundle, tmp_path) -> None:
    port = free_port()
    cli = signals_serve("--bundle", str(bundle), "--port", str(port), home=tmp_path)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", timeout_s=120, proc=cli)
        processes = family(cli.pid)
        assert processes, "the server runs as child processes of signals serve"
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=60) == 0
        _, alive = psutil.wait_procs(processes, timeout=20)
        assert not alive, f"left running: {[p.pid for p in alive]}"
        assert port_is_free(port)
    finally:
        cli.kill()


def test_a_killed_arbiter_takes_its_workers_along_and_the_command_says_so(bundle, tmp_path) -> None:
    port = free_port()
    cli = signals_serve("--bundle", str(bundle), "--port", str(port), home=tmp_path)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", timeout_s=120, proc=cli)
        arbiter = psutil.Process(cli.pid).children()[0]
        workers = arbiter.children(recursive=True)
        arbiter.kill()
        assert cli.wait(timeout=60) != 0  # the server died: not a clean stop
        _, alive = psutil.wait_procs(workers, timeout=20)
        assert not alive, "workers must not keep answering with nothing to supervise them"
        assert "the server exited" in cli.stdout.read()
    finally:
        cli.kill()


def test_an_alias_that_does_not_exist_ends_the_command_with_the_reason(tmp_path) -> None:
    port = free_port()
    started = time.monotonic()
    cli = signals_serve("--alias", "nope", "--port", str(port), "--tracking-uri", f"sqlite:///{tmp_path}/m.db",
                        home=tmp_path)
    out, _ = cli.communicate(timeout=120)
    assert cli.returncode == 2 and "cannot load session-signals@nope" in out
    assert time.monotonic() - started < 120 and port_is_free(port)
