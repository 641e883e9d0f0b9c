"""Training resumes: `signals train` killed with SIGKILL continues from its last epoch checkpoint in the
same MLflow run, with the final metrics of a run never interrupted (same seed); a finished run is not
continued; the early-stopped fit and the refit each resume to the uninterrupted result."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from mlflow import MlflowClient

from events.config_io import load_config
from events.errors import UserFacingError
from tests.factories import random_events, tiny_run_overrides, write_events
from training.config import TrainRunConfig
from training.in_memory import prepare_in_memory
from training.lightning_fit import fit
from training.resume import named_run, resume_key
from training.train import train

REPO_ROOT = Path(__file__).parents[1]
MAX_EPOCHS = 4


def run_overrides(tmp: Path, data: Path) -> list[str]:
    """A training of ~0.5 s epochs (small batches), without baselines or registry (their resumption is not
    what is tested, and they cost seconds); the refit's resumption is tested in one process below."""
    return [*tiny_run_overrides(data), f"train.max_epochs={MAX_EPOCHS}", "train.batch_size=16", "train.patience=10",
            "train.threads=1", "train.progress_bar=false", "baselines.enabled=false", "tracking.register=false",
            f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"output_dir={tmp}/runs"]


def env() -> dict[str, str]:
    return {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def finished(cmd: list[str], tmp: Path) -> str:
    done = subprocess.run(cmd, cwd=tmp, env=env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def parent_run_id(output: str) -> str:
    return re.search(r"parent run ([0-9a-f]{32})", output)[1]


def epochs_done(checkpoint: Path) -> int:
    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["epoch"]) + 1


def kill_mid_epoch(cmd: list[str], tmp: Path, client: MlflowClient, epoch: int) -> Path:
    """Start `cmd` and SIGKILL it in the epoch after `epoch`, once that epoch has logged a training loss
    (which the resumed run must not log twice); returns the checkpoint it left."""
    before = set((tmp / "runs").glob("*/checkpoints/last.ckpt"))
    proc = subprocess.Popen(cmd, cwd=tmp, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, seen = time.monotonic() + 120, None
    while time.monotonic() < deadline and proc.poll() is None and seen is None:
        fresh = set((tmp / "runs").glob("*/checkpoints/last.ckpt")) - before
        checkpoint = next(iter(fresh), None)
        # Read whole or not at all: the checkpoint is renamed into place.
        state = torch.load(checkpoint, map_location="cpu", weights_only=True) if checkpoint else None
        if state and state["epoch"] + 1 >= epoch:
            losses = client.get_metric_history(checkpoint.parent.parent.name, "train_loss")
            if max((m.step for m in losses), default=-1) > state["global_step"]:
                proc.send_signal(signal.SIGKILL)
                seen = checkpoint
        time.sleep(0.05)
    proc.wait(timeout=30)
    assert seen is not None, f"not killed after epoch {epoch}: {proc.stdout.read()[-3000:]}"
    return seen


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_killed_training_continues_in_the_same_run_with_the_uninterrupted_result(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_events(random_events(n_users=300, days=30), data)
    # The run never interrupted, in this process (one interpreter start less); then the same as `signals train`
    uninterrupted = train(load_config(TrainRunConfig, None, run_overrides(tmp_path, data)))["parent_run_id"]
    cmd = [sys.executable, "-m", "cli.main", "train", *run_overrides(tmp_path, data)]

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    checkpoint = kill_mid_epoch(cmd, tmp_path, client, epoch=2)
    killed_at = epochs_done(checkpoint)  # 2, or later if the kill came a little late
    assert killed_at < MAX_EPOCHS, "the training ended before it could be killed: nothing left to resume"
    model_run_id = checkpoint.parent.parent.name

    output = finished(cmd, tmp_path)
    resumed_from = re.search(r"resuming training from the checkpoint of epoch (\d+)/", output)
    assert resumed_from and int(resumed_from[1]) == killed_at, output[-3000:]
    assert [int(e) for e in re.findall(r"epoch_log: epoch (\d+)/", output)] == list(range(killed_at + 1, MAX_EPOCHS + 1))

    model_run = client.get_run(model_run_id)
    parent = client.get_run(model_run.data.tags["mlflow.parentRunId"])
    assert parent_run_id(output) == parent.info.run_id != uninterrupted  # the killed run, reopened; not the finished one
    assert parent.info.status == model_run.info.status == "FINISHED"
    assert parent.data.tags["resumed_after"] == "KILLED"
    for key in ("val_score", "train_loss"):  # every epoch's metrics logged once
        steps = [m.step for m in client.get_metric_history(model_run_id, key)]
        assert len(steps) == len(set(steps)), (key, steps)
    assert len(client.get_metric_history(model_run_id, "val_score")) == MAX_EPOCHS
    assert not checkpoint.exists()  # finished: nothing left to resume from (the best epoch's file stays)

    reference = client.get_run(client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{uninterrupted}' and tags.method = 'model'")[0]
        .info.run_id).data.metrics
    tests = {k: v for k, v in model_run.data.metrics.items() if k.startswith("test_")}
    assert tests and tests == pytest.approx({k: reference[k] for k in tests}, rel=1e-6, abs=1e-9)


# ------------------------------------------------- in one process: each fit resumes to the uninterrupted result

class Interrupt(L.Callback):
    """Stops a fit the way a crash does, after the checkpoints of the epochs that finished."""

    def __init__(self, at_epoch_start: int | None = None, at_fit_end: bool = False):
        self.at_epoch_start, self.at_fit_end = at_epoch_start, at_fit_end

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.at_epoch_start:
            raise RuntimeError("interrupted")

    def on_train_end(self, trainer, pl_module) -> None:
        if self.at_fit_end:
            raise RuntimeError("interrupted")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    write_events(random_events(n_users=40, days=30), tmp)
    return tmp


def fit_twice(cfg, data, ckpt_dir: Path, interrupt: Interrupt | None, refit: bool):
    """The early-stopped fit, then (with `refit`) the refit; `interrupt` goes to the phase it fits."""
    pop = torch.from_numpy(data.log_popularity())
    first = interrupt if interrupt and not refit else None
    module, score = fit(cfg, data, pop, False, ckpt_dir, [first] if first else None, resume=True)
    if refit:
        merged = data.for_refit()
        module, _ = fit(cfg, merged, torch.from_numpy(merged.log_popularity()), False, ckpt_dir,
                        [interrupt] if interrupt else None, epochs=module.epochs_trained, resume=True)
    return module, score


@pytest.mark.parametrize(("interrupt", "refit", "overrides"), [
    (Interrupt(at_epoch_start=2), False, ["train.max_epochs=4"]),
    (Interrupt(at_fit_end=True), False, ["train.max_epochs=8", "train.patience=1"]),  # after early stopping fired
    (Interrupt(at_epoch_start=1), True, ["train.max_epochs=3"]),  # in the middle of the refit
], ids=["mid-fit", "after-early-stopping", "mid-refit"])
def test_an_interrupted_fit_resumes_to_the_uninterrupted_weights(tiny, tmp_path, caplog, interrupt, refit,
                                                                 overrides) -> None:
    cfg = load_config(TrainRunConfig, None, [*tiny_run_overrides(tiny), "train.progress_bar=false", *overrides])
    data = prepare_in_memory(cfg)
    whole, whole_score = fit_twice(cfg, data, tmp_path / "whole", None, refit)
    with pytest.raises(RuntimeError, match="interrupted"):
        fit_twice(cfg, data, tmp_path / "cut", interrupt, refit)
    with caplog.at_level("INFO", logger="training.checkpoints"):
        resumed, resumed_score = fit_twice(cfg, data, tmp_path / "cut", None, refit)
    assert "resuming" in caplog.text
    assert resumed_score == whole_score and resumed.epochs_trained == whole.epochs_trained
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    # ... and the training state after the last epoch (the returned best epoch may precede the interruption)
    phase = "refit/last.ckpt" if refit else "last.ckpt"
    end = {run: torch.load(tmp_path / run / phase, weights_only=True) for run in ("whole", "cut")}
    assert (end["cut"]["epoch"], end["cut"]["global_step"]) == (end["whole"]["epoch"], end["whole"]["global_step"])
    for name, weights in end["whole"]["state_dict"].items():
        assert torch.equal(weights, end["cut"]["state_dict"][name]), name
    moments = [(s["exp_avg"], s["exp_avg_sq"]) for run in ("whole", "cut")
               for s in end[run]["optimizer_states"][0]["state"].values()]
    half = len(moments) // 2
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(moments[:half], moments[half:]))


def test_a_checkpoint_that_cannot_be_resumed_is_named_not_a_traceback(tiny, tmp_path) -> None:
    overrides = [*tiny_run_overrides(tiny), "train.progress_bar=false", "train.max_epochs=1"]
    cfg = load_config(TrainRunConfig, None, overrides)
    data = prepare_in_memory(cfg)
    fit(cfg, data, torch.from_numpy(data.log_popularity()), False, tmp_path, None)
    other = load_config(TrainRunConfig, None, [*overrides, "model.d_model=8"])  # another version of the model
    with pytest.raises(UserFacingError, match=r"last.ckpt does not fit this model .*--fresh"):
        fit(other, prepare_in_memory(other), torch.from_numpy(data.log_popularity()), False, tmp_path, None,
            resume=True)
    (tmp_path / "last.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserFacingError, match=r"cannot read the checkpoint .*last.ckpt"):
        fit(cfg, data, torch.from_numpy(data.log_popularity()), False, tmp_path, None, resume=True)


def test_resume_names_why_a_run_cannot_continue(tiny, tmp_path) -> None:
    from training import tracking

    cfg = load_config(TrainRunConfig, None, [*tiny_run_overrides(tiny), f"tracking.uri=sqlite:///{tmp_path}/m.db",
                                             f"output_dir={tmp_path}/runs"])
    tracking.setup(cfg.tracking)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(cfg.tracking.experiment).experiment_id
    key = resume_key(cfg, "data-key")
    done = client.create_run(experiment, tags={"resume_key": key})
    client.set_terminated(done.info.run_id, "FINISHED")
    with pytest.raises(UserFacingError, match="is finished"):
        named_run(cfg, done.info.run_id, key)
    other = client.create_run(experiment, tags={"resume_key": "another"})
    client.log_param(other.info.run_id, "train.lr", "0.5")
    client.set_terminated(other.info.run_id, "KILLED")
    with pytest.raises(UserFacingError, match=r"train.lr: 0.5 -> 0.003"):
        named_run(cfg, other.info.run_id, key)
    killed = client.create_run(experiment, tags={"resume_key": key})
    client.set_terminated(killed.info.run_id, "KILLED")
    with pytest.raises(UserFacingError, match="no checkpoint"):
        named_run(cfg, killed.info.run_id, key)
    with pytest.raises(UserFacingError, match="no such run"):
        named_run(cfg, "0" * 32, key)
    # Settings that change nothing learnt do not change the key; the data does
    quiet = load_config(TrainRunConfig, None, [*tiny_run_overrides(tiny), f"output_dir={tmp_path}/runs",
                                               "train.progress_bar=false", "train.threads=1"])
    assert resume_key(quiet, "data-key") == key != resume_key(cfg, "other-data")


def test_a_killed_runs_evaluation_runs_are_ended_with_it_and_dropped_on_resume(tmp_path) -> None:
    import socket

    from training import tracking
    from training.resume import drop_evaluation_runs

    cfg = TrainRunConfig().tracking
    cfg.uri, cfg.experiment = f"sqlite:///{tmp_path}/m.db", "children"
    tracking.setup(cfg)
    client = MlflowClient()
    experiment = client.get_experiment_by_name("children").experiment_id
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    dead = {tracking.PROCESS_TAG: f"{socket.gethostname()}:{gone}:0"}
    parent = client.create_run(experiment, tags=dead).info.run_id
    model = client.create_run(experiment, tags={**dead, "mlflow.parentRunId": parent, "method": "model"}).info.run_id
    baseline = client.create_run(experiment, tags={"mlflow.parentRunId": parent, "method": "popularity"}).info.run_id
    live = client.create_run(experiment, tags=tracking.process_tags()).info.run_id
    live_baseline = client.create_run(experiment, tags={"mlflow.parentRunId": live}).info.run_id

    tracking.setup(cfg)  # the next `signals train`: nothing of the dead process stays RUNNING, the live one runs
    status = {run: client.get_run(run).info.status for run in (parent, model, baseline, live, live_baseline)}
    assert status == {parent: "KILLED", model: "KILLED", baseline: "KILLED", live: "RUNNING", live_baseline: "RUNNING"}

    drop_evaluation_runs(parent, model)  # a resumed run evaluates the baselines again
    assert client.get_run(baseline).info.lifecycle_stage == "deleted"
    assert client.get_run(model).info.lifecycle_stage == "active"
