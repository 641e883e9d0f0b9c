"""The registered model's python code: `mlflow.pyfunc.load_model("models:/session-signals@champion")
.predict(events, params={"as_of": ...})` gives every user's signals, computed by the same code as
`signals score` and /predict.

Logged as a model from code (registry/logged_model.py; `signals_model.py` names the class and MLflow runs
that file at load time), so nothing is pickled: the bundle's files are the model's artifacts and the class
lives in this package.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from registry.logged_model import BUNDLE_KEY, OUTPUT_COLUMNS


class SignalsModel:
    """mlflow.pyfunc.PythonModel's protocol (load_context, predict), without importing MLflow here."""

    def load_context(self, context) -> None:
        from audiences.config import load_thresholds
        from serving.api_types import ModelIdentity
        from serving.engine import SignalsEngine
        from serving.segments import load_rules
        from serving.settings import DEFAULT_SEGMENTS_CONFIG

        # model_config: the registered name and the run, written when the model was logged (its version number
        # is given only when the model is registered, after: a caller that resolved it may pass model_config).
        identity = ModelIdentity(**{"name": "session-signals", "version": None, "run_id": None,
                                    **(context.model_config or {})})
        self.engine = SignalsEngine.from_bundle(Path(context.artifacts[BUNDLE_KEY]), identity,
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
