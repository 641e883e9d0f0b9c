"""The uplift run in MLflow: config, the base model it extends, every method's test figures, the table and
the bundle with its head; and that bundle registered as a version of its own (alias `uplift` by default), so
that `signals serve --alias uplift` (or an experiment arm) serves the model that answers `uplift`."""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from events.config_io import loggable
from registry import registered_version, resolve_uri, use_experiment
from training.tracking import log_registered_form
from training.uplift import TABLE_FILE, UpliftRunConfig

log = logging.getLogger(__name__)


def log_uplift(tracking_uri: str, experiment: str, data: Path, base_model: dict, cfg: UpliftRunConfig, out: Path,
               summary: dict) -> str:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    use_experiment(resolve_uri(tracking_uri), experiment)
    with mlflow.start_run(run_name=f"uplift-{data.resolve().name}") as run:
        mlflow.log_params({**loggable(cfg), "data": str(data), "chosen_design": summary["chosen"]})
        mlflow.set_tags({f"base_model.{k}": str(v) for k, v in base_model.items()})
        metrics = {f"test_{method}_{name}": value for method, r in summary["test"].items() if method != "model"
                   for name, value in r.items() if isinstance(value, float)}
        metrics |= {f"val_{design}_{name}": value for design, r in summary["validation"].items()
                    for name, value in r.items()}
        metrics |= {f"points_{k}": v for k, v in summary["counts"].items()}
        mlflow.log_metrics({k: v for k, v in metrics.items() if not math.isnan(v)})  # NaN (an empty arm) is not loggable
        mlflow.log_artifact(str(out / TABLE_FILE))
        mlflow.log_artifacts(str(out / "bundle"), "bundle")
        return run.info.run_id


def register_uplift(run_id: str, model_name: str, alias: str, base_model: dict, summary: dict) -> int:
    """Register the uplift run's bundle as a new version of `model_name` and point `alias` at it; returns the
    version. The base version's champion-rule tags (dataset key, primary metrics) are copied, since the head
    leaves every other signal as it was; champion and challenger do not move (promoting is the usual call)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    tags = {"uplift_design": summary["chosen"], "base_version": str(base_model.get("version"))}
    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(model_name, description="session-signals multi-task sequence model")
    if base_model.get("version") is not None:
        base = registered_version(client, model_name, str(base_model["version"]))
        tags |= {k: v for k, v in base.tags.items() if k == "dataset_key" or k.startswith("metric.")}
    test = summary["test"]["model"]
    tags |= {f"uplift.{k}": f"{test[k]:.6f}" for k in ("qini", "true_qini_over_oracle") if k in test}
    logged = log_registered_form(run_id, model_name)
    version = client.create_model_version(model_name, source=logged.model_uri, run_id=run_id, tags=tags,
                                          model_id=logged.model_id)
    client.set_registered_model_alias(model_name, alias, version.version)
    log.info("registered %s version %s with the %s uplift head as @%s", model_name, version.version,
             summary["chosen"], alias)
    return int(version.version)
