"""The bundle as an MLflow pyfunc model: `mlflow.pyfunc.load_model(uri).predict(events)` gives every
user's signals, computed by the same code as `signals score` and /predict.

Logged as a model from code (`signals_model.py` names the class; MLflow runs that file at load time), so
nothing is pickled: the bundle's files are the model's artifacts and the class lives in this package.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

MODEL_FILE = Path(__file__).with_name("signals_model.py")
OUTPUT_COLUMNS = ["user_id", "purchase_intent", "churn_risk", "top_products", "top_categories", "top_brands",
                  "segments", "days_since_last_event", "model_version"]


class SignalsModel:
    """mlflow.pyfunc.PythonModel's protocol (load_context, predict), without importing MLflow here."""

    def load_context(self, context) -> None:
        from audiences.config import load_thresholds
        from serving.api_types import ModelIdentity
        from serving.engine import SignalsEngine
        from serving.segments import load_rules
        from serving.settings import DEFAULT_SEGMENTS_CONFIG

        identity = ModelIdentity(**{"name": "session-signals", "version": None, "run_id": None,
                                    **(context.model_config or {})})
        self.engine = SignalsEngine.from_bundle(Path(context.artifacts["bundle"]), identity,
                                                load_rules(DEFAULT_SEGMENTS_CONFIG))
        self.thresholds = load_thresholds()

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """model_input: canonical events of any users (any order; ts naive UTC, as MLflow's schema wants);
        params: {"as_of": ISO time}, default the last event. One row per user with an event up to as_of."""
        from audiences.customer_rows import score_partition
        from events.schema import CANONICAL_COLUMNS

        events = model_input[list(CANONICAL_COLUMNS)].copy()
        events["ts"] = pd.to_datetime(events["ts"], utc=True).astype("datetime64[us, UTC]")
        events = events.sort_values(["user_id", "ts"], kind="stable", ignore_index=True)
        as_of = pd.Timestamp((params or {}).get("as_of") or events["ts"].max())
        as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
        customers = score_partition(events, as_of, self.engine, self.thresholds).customers
        return customers[OUTPUT_COLUMNS].reset_index(drop=True)


def log_pyfunc(bundle: Path, identity: dict, name: str = "signals", registered_model_name: str | None = None):
    """Log the bundle as a pyfunc model of the active run (signature and input example included)."""
    import mlflow
    from mlflow.models import infer_signature

    # ts naive UTC: MLflow's datetime schema refuses time-zone-aware columns. The null row marks category,
    # brand and price optional.
    example = pd.DataFrame({
        "user_id": ["u-1", "u-1", "u-1"], "session_id": ["s-1", "s-1", "s-1"],
        "ts": pd.to_datetime(["2026-03-02T18:01:05", "2026-03-02T18:03:40", "2026-03-02T18:04:12"]),
        "event_type": ["view", "view", "cart"], "product_id": ["1005115", "1004856", "1004856"],
        "category": ["electronics.smartphone", None, "electronics.smartphone"],
        "brand": ["apple", None, "samsung"], "price": [949.0, None, 128.4]})
    output = pd.DataFrame([{"user_id": "u-1", "purchase_intent": 0.1, "churn_risk": 0.5, "top_products": ["p"],
                            "top_categories": ["c"], "top_brands": ["b"], "segments": ["high_intent"],
                            "days_since_last_event": 0.0, "model_version": "1"}])
    signature = infer_signature(example, output, params={"as_of": ""})
    return mlflow.pyfunc.log_model(name=name, python_model=str(MODEL_FILE), artifacts={"bundle": str(bundle)},
                                   model_config=identity, signature=signature, input_example=example,
                                   registered_model_name=registered_model_name)
