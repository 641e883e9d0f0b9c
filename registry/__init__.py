"""The MLflow model registry as both sides see it: where the store is, the names of the served versions,
and fetching a version's bundle. Training registers and promotes (`training.tracking`); serving only
looks up (`serving.model_source`), so it needs nothing of training.
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"
CHAMPION, CHALLENGER = "champion", "challenger"
BUNDLE_ARTIFACT = "bundle"  # the folder of a model run's artifacts that holds the bundle


def resolve_uri(uri: str = "") -> str:
    """The tracking URI: given, else $MLFLOW_TRACKING_URI, else the embedded sqlite store under mlruns/."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI", "") or DEFAULT_URI
    if uri.startswith("sqlite:///") and uri not in _CREATED:
        create_sqlite_store(uri)
        _CREATED.add(uri)
    return uri


_CREATED: set[str] = set()  # sqlite stores this process has created or checked (once each)


def create_sqlite_store(uri: str) -> None:
    """Create (or bring up to MLflow's schema) the sqlite store behind `uri`, one process at a time.

    Two processes opening a new store at once (two `signals tune` workers, a training beside a server) both
    run MLflow's schema migrations on it and one of them dies (`table _alembic_tmp_tags already exists`,
    `duplicate column name`); under an exclusive lock on a file beside the database the first creates it
    and the others find it ready."""
    import fcntl

    from mlflow import MlflowClient

    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)


def download_bundle(model_name: str, alias: str | None, dst: str | Path | None = None,
                    version_number: int | None = None) -> tuple[Path, dict]:
    """Fetch the bundle of `model_name@alias` (or of version `version_number`); returns its local folder and
    the version's identity."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    if version_number is not None:
        version = client.get_model_version(model_name, str(version_number))
    else:
        version = client.get_model_version_by_alias(model_name, alias)
    path = mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(dst) if dst else None)
    return Path(path), {"model_name": model_name, "model_version": str(version.version), "run_id": version.run_id}


def artifact_location(uri: str, experiment: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside the embedded sqlite store (mlruns/artifacts/NAME),
    else the server's default (None)."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "artifacts" / experiment).as_uri()
