"""One answer everywhere: the registered pyfunc model, `signals score` and the engine behind /predict give a
customer the same scores for the same events and as_of (the HTTP path is tested engine-to-server in
tests/test_serving_e2e.py)."""
from __future__ import annotations

import pandas as pd
import pytest

from audiences.pyfunc import log_pyfunc
from audiences.score import read_customers
from tests.test_score import AS_OF, run_score, shop  # noqa: F401  (the module's fixture)

pytestmark = pytest.mark.e2e


def test_the_registered_pyfunc_model_gives_the_scores_of_signals_score(shop, tmp_path) -> None:  # noqa: F811
    import mlflow

    events, bundle = shop
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_experiment("pyfunc")
    with mlflow.start_run():
        info = log_pyfunc(bundle, {"name": "session-signals", "version": "1", "run_id": "r"},
                          registered_model_name="session-signals")
    mlflow.MlflowClient().set_registered_model_alias("session-signals", "champion", info.registered_model_version)
    model = mlflow.pyfunc.load_model("models:/session-signals@champion")
    table = pd.read_parquet(events / "events.parquet")
    table["ts"] = table["ts"].dt.tz_localize(None)  # naive UTC: MLflow's datetime schema refuses time zones
    answered = model.predict(table, params={"as_of": AS_OF.isoformat()}).set_index("user_id")

    run_score(shop, tmp_path / "out")
    scored = read_customers(tmp_path / "out").set_index("user_id")
    assert sorted(answered.index) == sorted(scored.index)
    pd.testing.assert_series_equal(answered["purchase_intent"], scored.loc[answered.index, "purchase_intent"], rtol=1e-5)
    pd.testing.assert_series_equal(answered["churn_risk"], scored.loc[answered.index, "churn_risk"], rtol=1e-5)
    assert [list(p) for p in answered["top_products"]] == [list(p) for p in scored.loc[answered.index, "top_products"]]
