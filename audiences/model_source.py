"""`--model`: a registry alias, a version number or a bundle folder -> the bundle folder and who it is.

Resolved before any scoring work, so an unknown alias or version is one clear error at once.
"""
from __future__ import annotations

import os
from pathlib import Path

from events.config_io import redact_uri
from events.errors import UserFacingError
from registry import download_bundle, resolve_uri
from serving.api_types import ModelIdentity


def fetch_model(model: str, model_name: str, tracking_uri: str, dst: Path) -> tuple[Path, ModelIdentity]:
    """A folder holding a bundle is used as it is (no version: identity names the folder)."""
    folder = Path(model)
    if folder.is_dir():
        return folder, ModelIdentity(name=folder.resolve().name, version=None, run_id=None)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # quiet logs: one line says what loads
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = resolve_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    try:
        if model.isdigit():
            version = mlflow.MlflowClient().get_model_version(model_name, model)
            path = Path(mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(dst)))
            return path, ModelIdentity(name=model_name, version=str(version.version), run_id=version.run_id)
        path, found = download_bundle(model_name, model, dst)
    except MlflowException as err:
        kind = "version" if model.isdigit() else "alias"
        raise UserFacingError(f"--model {model}: no {kind} {model!r} of {model_name} in {redact_uri(uri)} "
                              f"({err.message}); give an alias (champion, challenger), a version number or a "
                              "bundle folder") from None
    return path, ModelIdentity(name=found["model_name"], version=found["model_version"], run_id=found["run_id"])
