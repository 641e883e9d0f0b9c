"""`signals tune`: the typed TuneRunConfig, a pruned study mirrored one for one in MLflow, two workers on one
PostgreSQL study, and a killed worker whose study resumes."""
from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.factories import apt_install_or_skip, random_events, tiny_run_overrides, write_events
from events.config_io import load_config
from events.errors import UserFacingError
from training.tuning.config import TuneRunConfig, default_study_name
from training.tuning.storage import with_available_driver

REPO_ROOT = Path(__file__).parents[1]
STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


def tiny_overrides(tmp: Path) -> list[str]:
    data = tmp / "data"
    if not (data / "events.parquet").is_file():
        data.mkdir(parents=True, exist_ok=True)
        write_events(random_events(), data)
    return [*tiny_run_overrides(data), "train.max_epochs=2", "train.batch_size=32", "train.progress_bar=false",
            f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"output_dir={tmp}/runs"]


def worker_env() -> dict[str, str]:
    return {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def signals_tune(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", "tune", *args]


def ran_trials(output: str) -> list[int]:
    found = re.search(r"this worker ran trials: (.*)", output)
    assert found, output[-3000:]
    return [] if found.group(1).strip() == "none" else [int(x) for x in found.group(1).split(",")]


def mlflow_trial_runs(tracking_uri: str, study_name: str) -> dict[int, object]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("session-signals")
    runs = client.search_runs([experiment.experiment_id],
                              f"tags.role = 'tune-trial' and tags.`optuna.study` = '{study_name}'", max_results=1000)
    numbers = [int(r.data.tags["optuna.trial_number"]) for r in runs]
    assert len(numbers) == len(set(numbers)), f"a trial has several MLflow runs: {sorted(numbers)}"
    return {int(r.data.tags["optuna.trial_number"]): r for r in runs}


# ---------------------------------------------------------------- config (fast)

def test_default_config_file_is_what_no_config_means() -> None:
    assert load_config(TuneRunConfig, REPO_ROOT / "configs" / "tune-default.yaml") == load_config(TuneRunConfig)


@pytest.mark.parametrize("override, message", [
    ("tune.search_space={model.widht: {type: int, low: 1, high: 2}}", "unknown config key 'model.widht'"),
    ("tune.search_space={model.encoder: {type: categorical, choices: [gru, lstm]}}", "'lstm' is not one of"),
    ("tune.search_space={model.d_model: {type: float, low: 8.5, high: 64}}", "model.d_model: expected int"),
    ("tune.search_space={train.lr: {type: float, low: 0, high: 0.1, log: true}}", "needs low > 0"),
    ("tune.search_space={train.lr: {type: float, low: 0.1}}", "needs `low` and `high`"),
    ("tune.search_space={train.lr: {type: float, low: 0.1, high: 1, sigma: 2}}", "unknown config key(s)"),
    ("tune.metrc=val_score", "unknown config key(s) in section 'tune'"),
    ("tune.metric=intent_pr_auc", "validation metrics"),
    ("tune.pruner.kind=asha", "is not one of"),
])
def test_bad_tune_configs_fail_before_any_work(override: str, message: str) -> None:
    with pytest.raises(UserFacingError, match=re.escape(message)):
        load_config(TuneRunConfig, None, [override])


def test_direction_must_agree_with_early_stopping() -> None:
    cfg = load_config(TuneRunConfig, None, ["tune.metric=val_loss", "tune.direction=maximize"])
    with pytest.raises(UserFacingError, match="must minimize"):
        cfg.check()
    assert load_config(TuneRunConfig, None, ["tune.metric=val_loss"]).tune.directions() == ["minimize"]
    multi = load_config(TuneRunConfig, None, ["tune.metric=[val_intent_pr_auc, val_next_mrr_at_20]"])
    assert multi.tune.directions() == ["maximize", "maximize"] and multi.base().train.monitor == "val_score"


def test_study_name_follows_what_defines_the_study() -> None:
    a = default_study_name(load_config(TuneRunConfig))
    assert a == default_study_name(load_config(TuneRunConfig, None, ["tune.trials=99", "tracking.uri=sqlite:///x.db"]))
    assert a != default_study_name(load_config(TuneRunConfig, None, ["train.max_epochs=3"]))
    assert a != default_study_name(load_config(TuneRunConfig, None, ["tune.search_space={train.lr: {type: float, low: 0.001, high: 0.01}}"]))
    assert a.startswith(f"sim-{load_config(TuneRunConfig).data.simulate_events}-seed7-")


# ---------------------------------------------------------------- a study in process

@pytest.mark.e2e
def test_pruned_study_matches_mlflow_one_for_one_and_registers_the_best(tmp_path, monkeypatch) -> None:
    import optuna
    from mlflow import MlflowClient

    from training.tuning.runner import tune

    monkeypatch.chdir(tmp_path)
    # Trial 0 is a trained config, trial 1 never learns (lr 0): the median pruner stops it at epoch 0.
    # The objective is the validation loss: on tiny data an untrained model's ranking metrics are as good
    # as a trained one's by chance (about 1 / catalogue size), but its loss is not.
    cfg = load_config(TuneRunConfig, None, tiny_overrides(tmp_path) + [
        "tune.trials=3", f"tune.storage=sqlite:///{tmp_path}/optuna.db", "tune.metric=val_loss",
        "tune.search_space={train.lr: {type: float, low: 0.0, high: 0.05}, model.dropout: {type: float, low: 0.0, high: 0.3}}",
        "tune.enqueue=[{train.lr: 0.02, model.dropout: 0.0}, {train.lr: 0.0, model.dropout: 0.0}]",
        "tune.pruner.n_startup_trials=1", "tune.pruner.n_warmup_steps=0", "train.max_epochs=3",
        "baselines.vsknn_sample_sessions=200"])
    result = tune(cfg)

    study = optuna.load_study(study_name=result["study_name"], storage=f"sqlite:///{tmp_path}/optuna.db")
    trials = study.get_trials()
    states = {t.number: t.state.name for t in trials}
    assert sorted(states) == [0, 1, 2] and result["ran"] == [0, 1, 2]
    assert states[0] == "COMPLETE" and states[1] == "PRUNED", states
    runs = mlflow_trial_runs(result["tracking_uri"], result["study_name"])
    assert sorted(runs) == sorted(states)
    client = MlflowClient(result["tracking_uri"])
    for number, state in states.items():
        run = runs[number]
        assert run.data.tags["optuna.state"] == state and run.info.status == STATUS[state]
        assert run.data.tags["mlflow.parentRunId"] == result["parent_run_id"]
        assert run.data.params["train.lr"] == str(trials[number].params["train.lr"])
        assert len(client.get_metric_history(run.info.run_id, "val_score")) == len(trials[number].intermediate_values)
        if state == "COMPLETE":
            assert run.data.metrics["value"] == pytest.approx(trials[number].value)
    # Below a pruned trial, train()'s runs read as pruned too, not as crashes.
    below = client.search_runs([runs[1].info.experiment_id], f"tags.`mlflow.parentRunId` = '{runs[1].info.run_id}'")
    assert below and all(r.info.status == "KILLED" and r.data.tags["optuna.state"] == "PRUNED" for r in below)

    parent = client.get_run(result["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["best.trial"] == str(study.best_trial.number)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/optimization_history.png", "plots/parallel_coordinate.png"} <= artifacts

    retrain = result["retrain"]
    assert retrain["trial"] == study.best_trial.number
    retrained = client.get_run(retrain["run_id"])
    assert retrained.data.tags["mlflow.parentRunId"] == result["parent_run_id"]
    children = client.search_runs([retrained.info.experiment_id], f"tags.`mlflow.parentRunId` = '{retrain['run_id']}'")
    assert len([r for r in children if r.info.run_name.startswith("baseline-")]) >= 3  # retrained with baselines
    version = client.get_model_version_by_alias("session-signals", "challenger")
    assert version.run_id == retrain["model_run_id"] and retrain["registration"]["champion"]

    # Running it again finds the study complete: no trial, no second registration.
    again = tune(cfg)
    assert again["ran"] == [] and again["retrain"]["run_id"] == retrain["run_id"]
    assert len(client.search_model_versions("name = 'session-signals'")) == 1


# ---------------------------------------------------------------- PostgreSQL: two workers, one study

def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A private PostgreSQL cluster on a free loopback port; Debian's `postgresql` is installed when missing."""
    bindir = _pg_bindir()
    if bindir is None:
        apt_install_or_skip("postgresql", "PostgreSQL")
        bindir = _pg_bindir()
        assert bindir is not None, "postgresql installed but no /usr/lib/postgresql/*/bin/initdb"
    root = Path(tempfile.mkdtemp(prefix="signals-pg-"))  # not under pytest's 0700 tmp: the server user must enter
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as the package's postgres user
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else []
    port = _free_port()
    data, log = root / "data", root / "server.log"

    def pg(*cmd: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120, **kw)

    init = pg(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    assert init.returncode == 0, init.stderr
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
    start = pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60", "start")
    assert start.returncode == 0, start.stderr + (log.read_text() if log.exists() else "")
    try:
        made = pg(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "optuna")
        assert made.returncode == 0, made.stderr
        yield f"postgresql://postgres@127.0.0.1:{port}/optuna"
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_two_workers_share_one_postgresql_study(tmp_path, postgres_url) -> None:
    import optuna

    n = 3
    args = ["--storage", postgres_url, "--study", "shared", "--trials", str(n), "--no-retrain",
            *tiny_overrides(tmp_path), "tune.pruner.kind=none", "tune.sampler.n_startup_trials=2",
            "tune.search_space={train.lr: {type: float, low: 0.001, high: 0.05, log: true}}"]
    workers = [subprocess.Popen(signals_tune(*args), cwd=tmp_path, env=worker_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    for w, out in zip(workers, outputs):
        assert w.returncode == 0, out[-4000:]
    print(*outputs, sep="\n----\n")

    study = optuna.load_study(study_name="shared", storage=with_available_driver(postgres_url))
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials)))
    assert all(t.state.name == "COMPLETE" for t in trials), [t.state for t in trials]
    # Both workers ran trials; together every trial exactly once. Two workers checking the count at the
    # same instant may both start the last trial: at most one extra, never a lost or duplicated one.
    ran = [ran_trials(out) for out in outputs]
    assert all(ran), outputs
    assert sorted(ran[0] + ran[1]) == numbers
    assert n <= len(trials) <= n + 1
    runs = mlflow_trial_runs(f"sqlite:///{tmp_path}/mlflow.db", "shared")
    assert sorted(runs) == numbers
    parents = {r.data.tags["mlflow.parentRunId"] for r in runs.values()}
    assert parents == {study.user_attrs["mlflow_parent_run_id"]}
    assert all(r.info.status == "FINISHED" and r.data.tags["optuna.state"] == "COMPLETE" for r in runs.values())


# ---------------------------------------------------------------- a killed worker resumes

@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_killed_worker_resumes_the_study(tmp_path) -> None:
    import optuna

    storage = f"sqlite:///{tmp_path}/optuna.db"
    args = ["--storage", storage, "--study", "resumable", "--trials", "2", "--no-retrain", *tiny_overrides(tmp_path),
            "tune.pruner.kind=none", "tune.heartbeat_interval=1", "tune.grace_period=3", "train.max_epochs=3",
            "tune.search_space={train.lr: {type: float, low: 0.001, high: 0.05, log: true}}"]
    first = subprocess.Popen(signals_tune(*args), cwd=tmp_path, env=worker_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline, victim = time.monotonic() + 300, None
    while victim is None and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
        try:
            running = optuna.load_study(study_name="resumable", storage=storage).get_trials(
                states=(optuna.trial.TrialState.RUNNING,))
        except Exception:  # noqa: BLE001 - the study or its tables may not exist yet
            continue
        victim = next((t for t in running if "mlflow_run_id" in t.user_attrs), None)
    assert victim is not None, f"no trial started: {first.poll()} {first.stdout.read() if first.poll() is not None else ''}"
    time.sleep(0.5)
    first.send_signal(signal.SIGKILL)  # kill -9 mid-trial: no chance to tell Optuna or MLflow
    first.wait(timeout=30)

    second = subprocess.run(signals_tune(*args), cwd=tmp_path, env=worker_env(), capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    print(second.stdout)

    study = optuna.load_study(study_name="resumable", storage=storage)
    trials = {t.number: t for t in study.get_trials()}
    assert trials[victim.number].state.name == "FAIL"
    assert sum(t.state.name == "COMPLETE" for t in trials.values()) == 2
    assert [t.state.name for t in trials.values()].count("FAIL") == 1
    retry = [t for t in trials.values() if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE" and retry[0].params == victim.params
    runs = mlflow_trial_runs(f"sqlite:///{tmp_path}/mlflow.db", "resumable")
    assert sorted(runs) == sorted(trials)
    for number, trial in trials.items():
        assert runs[number].data.tags["optuna.state"] == trial.state.name
        assert runs[number].info.status == STATUS[trial.state.name]
    assert runs[retry[0].number].data.tags["optuna.retry_of"] == str(victim.number)
