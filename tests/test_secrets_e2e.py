"""A password in the tracking URI, end to end: a real training and scoring against an MLflow store on
PostgreSQL whose URI carries a password (the test cluster trusts loopback, so any password connects), and a
server pointed at a missing alias of it. The password must appear in no output, no run parameter and no tag."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import random_events, tiny_run_overrides, write_events
from tests.test_tune import postgres_url  # noqa: F401  (the private PostgreSQL cluster fixture)
from training.tuning.storage import with_available_driver

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cretPW42"


def signals(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "OMP_NUM_THREADS": "1", "SIGNALS_WORKERS": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.timeout(900)
def test_a_password_in_the_tracking_uri_is_never_shown_or_stored(tmp_path, postgres_url) -> None:  # noqa: F811
    uri = with_available_driver(postgres_url).replace("postgres@", f"postgres:{SECRET}@")
    data = tmp_path / "data"
    data.mkdir()
    write_events(random_events(), data)
    trained = signals("train", "--tracking-uri", uri, *tiny_run_overrides(data), "train.max_epochs=1",
                      "train.progress_bar=false", f"output_dir={tmp_path / 'runs'}", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    scored = signals("score", str(data), "--model", "champion", "--tracking-uri", uri, "--out", str(tmp_path / "aud"),
                     cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr[-3000:]
    missing = signals("serve", "--tracking-uri", uri, "--alias", "nope", "--port", "0", cwd=tmp_path)
    assert missing.returncode == 2
    for done in (trained, scored, missing):
        assert SECRET not in done.stdout + done.stderr
    assert "postgres:***@" in trained.stdout + trained.stderr  # shown, redacted

    import mlflow

    client = mlflow.MlflowClient(uri)
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) >= 3  # the training's parent, model and baseline runs, and the scoring run
    for run in runs:
        stored = {**run.data.params, **run.data.tags}
        assert not {k: v for k, v in stored.items() if SECRET in str(v)}, run.info.run_name
