"""The registered model's MLflow form: a pyfunc model from code whose artifacts are the bundle's files.

Training logs it beside the model run at registration and points the registered version at it
(`training.tracking.register`); `registry.download_bundle` takes the bundle's files back out of it for the
BentoML service and `signals score`; `mlflow.pyfunc.load_model("models:/session-signals@champion")` and
Spark's `mlflow.pyfunc.spark_udf` load it whole. Nothing is pickled: the python model is a file of the
package, `audiences/pyfunc/signals_model.py` (it scores with the endpoint's engine), named here by path.
MLflow copies that file into the model and runs it when the model is logged (to check the input example)
and loaded, so training, which logs the model, imports nothing of audiences or serving (docs/DESIGN.md).
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

LOGGED_MODEL_NAME = "signals"  # the logged model's name on its run (the MLflow UI lists it beside the run)
BUNDLE_KEY = "bundle"  # the pyfunc artifact that holds the bundle: <logged model>/artifacts/bundle
CODE_FILE = Path(__file__).resolve().parents[1] / "audiences" / "pyfunc" / "signals_model.py"
OUTPUT_COLUMNS = ["user_id", "purchase_intent", "churn_risk", "top_products", "top_categories", "top_brands",
                  "segments", "days_since_last_event", "model_name", "model_version", "model_run_id"]
# What the loaded model needs to run (the project's own package included): written instead of letting MLflow
# infer them, which would load the model once more in a subprocess at every registration.
REQUIREMENTS = ("session-signals", "mlflow", "torch", "numpy", "pandas", "pyarrow", "pydantic", "safetensors", "pyyaml")


def input_example() -> pd.DataFrame:
    """Canonical events of one shopper; ts naive UTC (MLflow's datetime schema refuses time zones), and a
    null row that marks category, brand and price optional."""
    return pd.DataFrame({
        "user_id": ["u-1", "u-1", "u-1"], "session_id": ["s-1", "s-1", "s-1"],
        "ts": pd.to_datetime(["2026-03-02T18:01:05", "2026-03-02T18:03:40", "2026-03-02T18:04:12"]),
        "event_type": ["view", "view", "cart"], "product_id": ["1005115", "1004856", "1004856"],
        "category": ["electronics.smartphone", None, "electronics.smartphone"],
        "brand": ["apple", None, "samsung"], "price": [949.0, None, 128.4]})


def output_example() -> pd.DataFrame:
    return pd.DataFrame([{"user_id": "u-1", "purchase_intent": 0.1, "churn_risk": 0.5, "top_products": ["p"],
                          "top_categories": ["c"], "top_brands": ["b"], "segments": ["high_intent"],
                          "days_since_last_event": 0.0, "model_name": "session-signals", "model_version": "1",
                          "model_run_id": "r"}])[OUTPUT_COLUMNS]


def requirements() -> list[str]:
    pinned = []
    for name in REQUIREMENTS:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:  # run from a checkout without the project installed
            pinned.append(name)
    return pinned


def log_signals_model(bundle: Path, run_id: str, identity: dict[str, str | None]):
    """Log `bundle` (a folder) as the pyfunc model of run `run_id`; returns MLflow's ModelInfo (model_uri,
    model_id). `identity` (name, version, run_id) is what the model answers with (its model_config)."""
    import mlflow
    from mlflow.models import Model, infer_signature

    if not CODE_FILE.is_file():
        raise FileNotFoundError(f"the pyfunc model's code {CODE_FILE} is missing: is the package installed whole?")
    signature = infer_signature(input_example(), output_example(), params={"as_of": ""})
    # Model.log rather than mlflow.pyfunc.log_model: it attaches the model to a run that is not the active one.
    return Model.log(artifact_path=None, name=LOGGED_MODEL_NAME, flavor=mlflow.pyfunc, run_id=run_id,
                     python_model=str(CODE_FILE), artifacts={BUNDLE_KEY: str(bundle)}, model_config=identity,
                     signature=signature, input_example=input_example(), pip_requirements=requirements())
