"""Which bundle the server loads, and the identity it answers with.

In order: SIGNALS_BUNDLE (a folder); the model packaged inside a Bento (bentofile.yaml names it by the
alias PACKAGED_ALIAS, which BentoML maps only when serving a Bento or the project folder); otherwise
SIGNALS_MODEL_NAME@SIGNALS_MODEL_ALIAS from the MLflow registry at MLFLOW_TRACKING_URI.
"""
from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from serving.api_types import ModelIdentity
from serving.settings import ServingSettings

log = logging.getLogger(__name__)

BENTO_MODEL_NAME = "session-signals-bundle"
"""Name of the bundle in BentoML's model store (BentoML tags cannot hold MLflow's `name@alias`)."""
PACKAGED_ALIAS = "signals-bundle"


@contextmanager
def located_model(settings: ServingSettings) -> Iterator[tuple[Path, ModelIdentity]]:
    """The bundle folder (valid inside the `with`) and who it is."""
    if settings.bundle is not None:
        identity = settings.bundle_identity or {"name": settings.bundle.name, "version": None, "run_id": None}
        yield settings.bundle, ModelIdentity(**identity)
        return
    packaged = packaged_model()
    if packaged is not None:
        yield packaged
        return
    with tempfile.TemporaryDirectory(prefix="signals-bundle-") as tmp:
        yield registry_model(settings, Path(tmp))


def packaged_model() -> tuple[Path, ModelIdentity] | None:
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        model = bentoml.models.get(PACKAGED_ALIAS)
    except NotFound:
        return None
    log.info("serving the packaged model %s", model.tag)
    return Path(model.path), ModelIdentity(**model.info.metadata)


def registry_model(settings: ServingSettings, dst: Path, version: int | None = None) -> tuple[Path, ModelIdentity]:
    """The bundle of SIGNALS_MODEL_NAME@SIGNALS_MODEL_ALIAS, or of registry version `version` when given."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from events.config_io import redact_uri
    from registry import download_bundle, resolve_uri

    uri = resolve_uri(settings.tracking_uri)
    mlflow.set_tracking_uri(uri)
    wanted = f"{settings.model_name}@{settings.model_alias}" if version is None else f"{settings.model_name} v{version}"
    log.info("serving %s from %s", wanted, redact_uri(uri))
    try:
        path, found = download_bundle(settings.model_name, settings.model_alias, dst, version_number=version)
    except MlflowException as err:
        raise RuntimeError(f"cannot load {wanted} from {redact_uri(uri)}: {err.message}; "
                           "train one (`signals train`) or point SIGNALS_BUNDLE at a bundle folder") from err
    return path, ModelIdentity(name=found["model_name"], version=found["model_version"], run_id=found["run_id"])


def pin_registered_model(settings: ServingSettings, dst: Path, version: int | None = None) -> tuple[Path, ModelIdentity]:
    """Resolve the alias (or take `version`) to one version and fetch its bundle into `dst` once, before any
    worker starts: every worker (and every worker restarted later) then loads the same version, and a missing
    alias or deleted artifacts is one clear error at startup instead of workers failing over and over."""
    path, identity = registry_model(settings, dst, version)
    from models.bundle import load_bundle

    try:
        load_bundle(path)  # proves the artifacts are whole before the server promises anything
    except (FileNotFoundError, OSError, ValueError, RuntimeError) as err:
        wanted = f"{settings.model_name}@{settings.model_alias}" if version is None else settings.model_name
        raise RuntimeError(f"{wanted} (v{identity.version}): {err}") from err
    return path, identity
