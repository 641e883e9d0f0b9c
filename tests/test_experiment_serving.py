"""A traffic split as an operator runs it: `signals serve --experiment` on two registered versions and a
holdout, in a real MLflow store, two workers, real HTTP, stopped with SIGTERM and started again; then the
assignment log read back. Bad experiment files end the command at startup naming the key."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
import yaml

from events.exposures import read_configurations, read_exposures
from models.bundle import save_bundle
from models.encoding import EventEncoder
from models.network import ModelConfig, SessionSignalsModel
from serving.experiment import Split
from serving.process import free_port, wait_until_ready
from tests.factories import random_events

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
SHARES = {"champion": 0.5, "challenger": 0.3, "holdout": 0.2}
EVENTS = [{"ts": "2026-03-02T18:01:05Z", "event_type": "view", "product_id": "p1"},
          {"ts": "2026-03-02T18:02:05Z", "event_type": "cart", "product_id": "p2"}]


def tiny_bundle(folder: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    events = random_events(n_users=20, days=10).sort_values(["user_id", "ts"], kind="stable")
    encoder = EventEncoder.fit(events)
    model = SessionSignalsModel(ModelConfig(**encoder.sizes(), d_model=16, max_len=20))
    n, c, b = len(encoder.products), len(encoder.categories), len(encoder.brands)
    meta = {"intent_base_rate": 0.2, "churn_base_rate": 0.4, "churn_horizon_days": 7,
            "popularity_log_prob": [-1e9, -1e9] + [float(np.log(1 / (n - 2)))] * (n - 2),
            "category_prior": [0, 0] + [1 / (c - 2)] * (c - 2), "brand_prior": [0, 0] + [1 / (b - 2)] * (b - 2)}
    return save_bundle(folder, model, encoder, meta)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[str, dict[str, str]]:
    """A private MLflow store with two versions of session-signals: v1 champion, v2 challenger."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("bundles", artifact_location=str(root / "artifacts"))
    client.create_registered_model("session-signals")
    versions = {}
    for seed, alias in ((1, "champion"), (2, "challenger")):
        run = client.create_run(experiment)
        client.log_artifacts(run.info.run_id, str(tiny_bundle(root / alias, seed)), "bundle")
        client.set_terminated(run.info.run_id)
        version = client.create_model_version("session-signals", f"{run.info.artifact_uri}/bundle", run.info.run_id)
        client.set_registered_model_alias("session-signals", alias, version.version)
        versions[alias] = str(version.version)
    return uri, versions


def experiment_file(tmp_path: Path, log_dir: Path, **log_settings) -> Path:
    config = {"name": "exp-e2e", "control": "champion",
              "arms": [{"name": "champion", "alias": "champion", "share": SHARES["champion"]},
                       {"name": "challenger", "alias": "challenger", "share": SHARES["challenger"]},
                       {"name": "holdout", "holdout": True, "share": SHARES["holdout"]}],
              "log": {"dir": str(log_dir), "min_free_mb": 1, **log_settings}}
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def signals_serve(config: Path, port: int, uri: str, home: Path, workers: int = 2) -> subprocess.Popen:
    env = {**os.environ, "SIGNALS_WORKERS": str(workers), "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--experiment", str(config), "--port", str(port),
                             "--tracking-uri", uri], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def stop(cli: subprocess.Popen) -> None:
    """SIGTERM first, so that `signals serve` stops its server too (SIGKILL would orphan it), then SIGKILL."""
    if cli.poll() is None:
        cli.send_signal(signal.SIGTERM)
        try:
            cli.wait(timeout=60)
        except subprocess.TimeoutExpired:
            cli.kill()


def ask(url: str, user_id: str | None) -> dict:
    """One /predict on a fresh connection, so that the workers share the requests."""
    body = {"events": EVENTS, **({"user_id": user_id} if user_id is not None else {})}
    response = httpx.post(f"{url}/predict", json=body, headers={"Connection": "close"}, timeout=30)
    response.raise_for_status()
    return response.json()


def serve_and_ask(config: Path, uri: str, home: Path, users: list[str | None]) -> tuple[list[dict], str]:
    """Start `signals serve`, answer `users` from 8 clients at once, read /metrics, stop it with SIGTERM."""
    port = free_port()
    cli = signals_serve(config, port, uri, home)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, timeout_s=180, proc=cli)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda u: ask(url, u), users))
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=90) == 0, cli.stdout.read()
    finally:
        stop(cli)
    return answers, metrics


def test_the_split_holds_across_workers_and_a_restart_and_the_log_has_every_answer_once(store, tmp_path) -> None:
    uri, versions = store
    log_dir = tmp_path / "log"
    config = experiment_file(tmp_path, log_dir)
    split = Split("exp-e2e", list(SHARES), list(SHARES.values()))
    users = [f"shopper-{i}" for i in range(240)]

    first, metrics = serve_and_ask(config, uri, tmp_path / "home", users + [None, None, ""])
    again, _ = serve_and_ask(config, uri, tmp_path / "home", users[::3])  # a restart: the same shoppers, same arms

    for user, answer in [*zip(users, first), *zip(users[::3], again)]:
        arm = split.arm_of(user)
        assert answer["experiment"] == {"name": "exp-e2e", "arm": arm, "assigned": True, "holdout": arm == "holdout",
                                        "request_id": answer["experiment"]["request_id"]}
        if arm == "holdout":  # no model answer
            assert answer["model"] is None and answer["purchase_intent"] is None and answer["products"] == []
        else:
            assert answer["model"]["version"] == versions[arm] and 0 <= answer["purchase_intent"] <= 1
    for answer in first[len(users):]:  # no user_id: the control answers, outside the experiment, counted
        assert answer["experiment"]["assigned"] is False and answer["experiment"]["request_id"] is None
        assert answer["model"]["version"] == versions["champion"]
    assert 'signals_experiment_unassigned_total{arm="champion",experiment="exp-e2e"} 3.0' in metrics

    read = read_exposures(log_dir)
    log = read.exposures
    answered = [a["experiment"]["request_id"] for a in first[:len(users)] + again]
    assert read.truncated_lines == 0 and log["request_id"].is_unique
    assert sorted(log["request_id"]) == sorted(answered), "every answered request exactly once, nothing else"
    assert (log["arm"] == log["user_id"].map(split.arm_of)).all()
    assert set(log["model_version"].dropna()) == {versions["champion"], versions["challenger"]}
    writers = {name.rsplit("-", 1)[1] for name in (p.stem for p in log_dir.glob("exposures-*.jsonl"))}
    assert len(writers) >= 3, f"two workers, then a restart, each wrote its own files: {writers}"
    manifest = read_configurations(log_dir, "exp-e2e")
    assert len(manifest) == 1 and [a["share"] for a in manifest[0]["arms"]] == list(SHARES.values())


@pytest.mark.parametrize(("change", "named"), [
    (lambda c: c["arms"][1].update(alias="nope"), ["arms[1].alias", "cannot load session-signals@nope"]),
    (lambda c: c["arms"][0].update(version=99, alias=None), ["arms[0].version", "session-signals v99"]),
    (lambda c: c["arms"][2].update(share=0.3), ["arms[*].share", "sum to 1.1"]),
    (lambda c: c["arms"].append(dict(c["arms"][0])), ["arms[3].name", "duplicate arm 'champion'"]),
    (lambda c: c["log"].update(dir="/proc/signals-log"), ["log.dir", "/proc/signals-log"]),
])
def test_a_bad_experiment_ends_the_command_at_startup_naming_the_key(store, tmp_path, change, named) -> None:
    uri, _ = store
    path = experiment_file(tmp_path, tmp_path / "log")
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    cli = signals_serve(path, port, uri, tmp_path / "home")
    out, _ = cli.communicate(timeout=120)
    assert cli.returncode == 2, out
    assert str(path) in out and all(n in out for n in named), out


def test_readyz_names_a_log_folder_that_cannot_be_written_until_it_can_again(store, tmp_path) -> None:
    uri, _ = store
    log_dir = tmp_path / "log"
    config = experiment_file(tmp_path, log_dir, max_file_minutes=0.005)  # files close 0.3 s after opening
    port = free_port()
    cli = signals_serve(config, port, uri, tmp_path / "home", workers=1)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, timeout_s=180, proc=cli)
        ask(url, "before")
        time.sleep(1.5)
        shutil.rmtree(log_dir)  # unmounted, deleted: the next file cannot be opened
        ask(url, "during")  # still answered: a request never waits for the log
        deadline = time.monotonic() + 20
        while (ready := httpx.get(f"{url}/readyz", timeout=5)).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.status_code == 503 and f"cannot write under {log_dir}" in ready.text
        log_dir.mkdir()
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "ready again once the folder is back"
            time.sleep(0.2)
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=90) == 0
    finally:
        stop(cli)
    assert list(read_exposures(log_dir).exposures["user_id"]) == ["during"]  # kept in memory, written when it could
