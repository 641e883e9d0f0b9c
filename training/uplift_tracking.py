"""The uplift run in MLflow: config, the base model it extends, every method's test figures, the table and
the bundle with its head."""
from __future__ import annotations

import math
import os
from pathlib import Path

from events.config_io import loggable
from registry import resolve_uri, use_experiment
from training.uplift import TABLE_FILE, UpliftRunConfig


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
