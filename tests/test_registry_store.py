"""The embedded MLflow store: several processes opening a new one at once (two tune workers, a training
beside a server) must all find it ready; without the lock one of them died in MLflow's schema migration."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_processes_opening_a_new_sqlite_store_at_once_all_succeed(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    code = ("import mlflow; from registry import resolve_uri; "
            f"mlflow.MlflowClient(resolve_uri({uri!r})).search_experiments()")
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(e[-500:] for e in errors)
