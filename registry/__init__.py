"""The MLflow model registry as both sides see it: where the store is, the names of the served versions,
and fetching a version's bundle. Training registers and promotes (`training.tracking`); serving only
looks up (`serving.model_source`), so it needs nothing of training. A version is a pyfunc model from code
whose artifacts are the bundle's files (`registry/logged_model.py`); older versions name a run's bundle.
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
    """Fetch the bundle of `model_name@alias` (or of version `version_number`, or of version `alias` when it is a
    number); returns its local folder and the version's identity."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    version = registered_version(client, model_name, str(version_number) if version_number is not None else alias)
    path = mlflow.artifacts.download_artifacts(artifact_uri=bundle_uri(client, version),
                                               dst_path=str(dst) if dst else None)
    return Path(path), {"model_name": model_name, "model_version": str(version.version), "run_id": version.run_id}


def registered_version(client, model_name: str, alias: str):
    """The ModelVersion that an alias (champion, challenger) or a version number names."""
    return client.get_model_version(model_name, alias) if alias.isdigit() else client.get_model_version_by_alias(
        model_name, alias)


def bundle_uri(client, version) -> str:
    """Where a registered version's bundle files are: inside its logged pyfunc model (`models:/<model id>`,
    registry/logged_model.py), or, for versions registered before the pyfunc, the run's bundle artifact
    that the version's source names."""
    from registry.logged_model import BUNDLE_KEY

    if not version.source.startswith("models:/"):
        return version.source
    model_id = version.source.removeprefix("models:/").split("/")[0]
    return f"{client.get_logged_model(model_id).artifact_location.rstrip('/')}/artifacts/{BUNDLE_KEY}"


def use_experiment(uri: str, name: str, tags: dict[str, str] | None = None):
    """Make `name` MLflow's active experiment in the store at `uri`, creating it (with `tags`) when new.

    Every command's runs go through here so that, in the embedded sqlite store, their artifacts stay beside
    the database (mlruns/artifacts/NAME) instead of wherever the command happened to be started."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(name) is None:
        location = None  # a tracking server's own default
        if uri.startswith("sqlite:///"):
            location = (Path(uri.removeprefix("sqlite:///")).resolve().parent / "artifacts" / name).as_uri()
        mlflow.create_experiment(name, artifact_location=location, tags=tags)
    return mlflow.set_experiment(name)
