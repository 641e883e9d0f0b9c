"""Scoring on Spark (local mode, real JVM) and one answer everywhere.

Spark scores a few thousand simulated customers with the registered pyfunc model and gives each the answer
`signals score` writes. Then, for one trained and registered model and one moment, `signals score`, the
pyfunc model, Spark and POST /predict on a real BentoML server (tests/test_serving_e2e.py's fixture) give
every customer the same scores. Java comes from Debian's packages, installed here when missing.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audiences.config import load_thresholds
from audiences.event_table import EventTable
from audiences.score import ScoreJob, read_customers, score
from audiences.spark import fetch_model, read_events, score_events, spark_session
from cli.main import main
from registry import download_bundle
from serving.api_types import ModelIdentity
from serving.segments import load_rules
from serving.settings import DEFAULT_SEGMENTS_CONFIG
from tests.factories import apt_install_or_skip
from tests.test_score import random_bundle
from tests.test_serving_e2e import AS_OF, served, shopper_json  # noqa: F401  (the module's fixture)
from training.tracking import register

pytestmark = pytest.mark.e2e

COMPARED = ("purchase_intent", "churn_risk", "top_products", "top_categories", "segments")


def ensure_java() -> None:
    """Java 17+ for Spark: Debian's openjdk-17-jre-headless when none is on PATH."""
    if shutil.which("java") or os.environ.get("JAVA_HOME"):
        return
    apt_install_or_skip("openjdk-17-jre-headless", "Java")


@pytest.fixture(scope="module")
def spark():
    ensure_java()
    session = spark_session("local[2]", "signals-test")
    yield session
    session.stop()


def use_store(root: Path) -> str:
    import mlflow

    uri = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    return uri


def new_experiment(root: Path) -> None:
    """Artifacts under root (a sqlite store's default is ./mlruns of the working directory)."""
    import mlflow

    mlflow.set_experiment(experiment_id=mlflow.create_experiment("models", (root / "artifacts").as_uri()))


def spark_scores(spark, events_path: Path, uri: str, as_of: pd.Timestamp, dst: Path, groups: int = 4) -> pd.DataFrame:
    model_dir, identity = fetch_model("champion", "session-signals", uri, dst / "model")
    (dst / "staging").mkdir()
    return score_events(spark, read_events(spark, str(events_path)), model_dir, identity, as_of, groups,
                        dst / "staging").toPandas()


def assert_same_scores(found: pd.DataFrame, expected: pd.DataFrame, who: str) -> None:
    """Both indexed by user_id: the same customers, scores equal up to float32 rounding, the same lists."""
    assert sorted(found.index) == sorted(expected.index), who
    found = found.loc[expected.index]
    for column in ("purchase_intent", "churn_risk"):
        np.testing.assert_allclose(found[column].to_numpy(float), expected[column].to_numpy(float), rtol=1e-5,
                                   err_msg=f"{who}: {column}")
    for column in ("top_products", "top_categories", "segments"):
        assert [list(v) for v in found[column]] == [list(v) for v in expected[column]], f"{who}: {column}"


def test_spark_scores_a_few_thousand_simulated_customers_as_signals_score_does(spark, tmp_path) -> None:
    assert main(["simulate", "--seed", "3", "--out", str(tmp_path / "sim"), "--no-progress", "n_users=2000"]) == 0
    events = pd.read_parquet(tmp_path / "sim" / "events.parquet")
    uri = use_store(tmp_path)
    new_experiment(tmp_path)
    import mlflow

    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(random_bundle(events, tmp_path / "bundle")), "bundle")
    register(run.info.run_id, "session-signals", "key", {}, "always")
    table = EventTable.open(tmp_path / "sim")
    as_of = table.ts_max - pd.Timedelta(days=3)  # some customers only act after it

    on_spark = spark_scores(spark, tmp_path / "sim", uri, as_of, tmp_path / "model").set_index("user_id")
    bundle, version = download_bundle("session-signals", "champion", tmp_path / "registered")
    identity = ModelIdentity(name="session-signals", version=version["model_version"], run_id=run.info.run_id)
    score(ScoreJob(table, as_of, bundle, identity, load_rules(DEFAULT_SEGMENTS_CONFIG), load_thresholds(),
                   tmp_path / "out"))
    scored = read_customers(tmp_path / "out").set_index("user_id")
    assert len(scored) > 1500
    assert_same_scores(on_spark, scored, "spark")
    assert on_spark["model_version"].eq("1").all() and on_spark["model_run_id"].eq(run.info.run_id).all()


def test_one_answer_everywhere_signals_score_pyfunc_spark_and_predict_over_http(served, spark, tmp_path) -> None:  # noqa: F811
    """The model that test_serving_e2e trained, registered and serves; every customer as of AS_OF."""
    import mlflow

    uri = use_store(served.store)
    as_of = pd.Timestamp(AS_OF)
    data = served.store / "data"
    assert main(["score", str(data), "--out", str(tmp_path / "out"), "--tracking-uri", uri, "--as-of", AS_OF]) == 0
    scored = read_customers(tmp_path / "out").set_index("user_id")

    events = served.events[served.events["ts"] <= as_of]
    naive = events.assign(ts=events["ts"].dt.tz_localize(None))  # MLflow's datetime schema refuses time zones
    pyfunc = mlflow.pyfunc.load_model("models:/session-signals@champion").predict(naive, params={"as_of": AS_OF})

    on_spark = spark_scores(spark, data, uri, as_of, tmp_path / "model")

    users = sorted(events["user_id"].unique())
    response = served.client.post("/predict_batch", json={"shoppers": [
        shopper_json(events[events["user_id"] == u], user_id=u, k=10, k_categories=3, k_brands=3,
                     filters={"exclude_purchased": True}) for u in users]})
    assert response.status_code == 200, response.text
    answers = response.json()["results"]
    over_http = pd.DataFrame({
        "user_id": [a["user_id"] for a in answers], "purchase_intent": [a["purchase_intent"] for a in answers],
        "churn_risk": [a["churn_risk"] for a in answers],
        "top_products": [[p["product_id"] for p in a["products"]] for a in answers],
        "top_categories": [[c["name"] for c in a["categories"]] for a in answers],
        "segments": [a["segments"] for a in answers]})

    assert len(scored) == len(users) > 30
    for who, found in (("pyfunc", pyfunc), ("spark", on_spark), ("/predict", over_http)):
        assert_same_scores(found.set_index("user_id")[list(COMPARED)], scored, who)
    assert {a["model"]["version"] for a in answers} == set(scored["model_version"]) == {"1"}
