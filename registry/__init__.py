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
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return uri


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
