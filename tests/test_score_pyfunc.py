"""The registered model is the pyfunc model: training's registration logs the bundle as an MLflow pyfunc model
beside its run and points the version at it; `mlflow.pyfunc.load_model("models:/session-signals@champion")`
answers what `signals score` writes, and serving and `signals score` load the same version's bundle files.
Versions registered before (a run's bundle artifact only) still load."""
from __future__ import annotations

import filecmp
import json

import pandas as pd
import pytest

from audiences.score import read_customers
from cli.main import main
from registry import download_bundle
from registry.logged_model import LOGGED_MODEL_NAME, OUTPUT_COLUMNS
from tests.test_score import AS_OF, shop  # noqa: F401  (the module's fixture)
from training.tracking import register

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def registry_store(shop, tmp_path_factory):  # noqa: F811
    """A real sqlite store: v1 registered the old way (the run's bundle artifact), v2 by training's
    registration (the pyfunc model), champion."""
    import mlflow

    _, bundle = shop
    root = tmp_path_factory.mktemp("registry")
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("pyfunc", (root / "artifacts").as_uri()))
    client = mlflow.MlflowClient()
    runs = []
    for _ in range(2):
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(bundle), "bundle")
        runs.append(run.info.run_id)
    client.create_registered_model("session-signals")
    client.create_model_version("session-signals", f"runs:/{runs[0]}/bundle", runs[0])
    registration = register(runs[1], "session-signals", "key", {}, "always")
    return root, runs, registration


def test_registration_points_the_version_at_a_pyfunc_model_logged_beside_its_run(registry_store) -> None:
    import mlflow

    root, runs, registration = registry_store
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("session-signals", "champion")
    assert str(version.version) == str(registration["version"]) == "2"
    assert version.source.startswith("models:/")
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    assert logged.source_run_id == runs[1] and logged.name == LOGGED_MODEL_NAME  # the UI shows it beside the run
    info = mlflow.models.get_model_info("models:/session-signals@champion")
    assert info.signature is not None and info.saved_input_example_info is not None
    assert [c.name for c in info.signature.outputs.inputs] == OUTPUT_COLUMNS


def test_serving_and_signals_score_load_the_bundle_files_of_old_and_new_versions(shop, registry_store, tmp_path) -> None:  # noqa: F811
    import mlflow

    _, bundle = shop
    mlflow.set_tracking_uri(f"sqlite:///{registry_store[0]}/mlflow.db")
    for version in ("1", "champion"):
        path, identity = download_bundle("session-signals", version, tmp_path / version)
        same = filecmp.dircmp(bundle, path)
        assert sorted(same.same_files) == sorted(p.name for p in bundle.iterdir()) and not same.diff_files
    assert identity["model_version"] == "2"


def test_the_registered_pyfunc_model_gives_the_scores_of_signals_score(shop, registry_store, tmp_path) -> None:  # noqa: F811
    import mlflow

    events, _ = shop
    root, runs, _ = registry_store
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    model = mlflow.pyfunc.load_model("models:/session-signals@champion")
    table = pd.read_parquet(events / "events.parquet")
    table["ts"] = table["ts"].dt.tz_localize(None)  # naive UTC: MLflow's datetime schema refuses time zones
    answered = model.predict(table, params={"as_of": AS_OF.isoformat()}).set_index("user_id")
    assert answered["model_run_id"].eq(runs[1]).all()

    # signals score on the same registered version, through the command
    code = main(["score", str(events), "--out", str(tmp_path / "out"), "--tracking-uri", f"sqlite:///{root}/mlflow.db",
                 "--as-of", AS_OF.isoformat()])
    assert code == 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["model"]["version"] == "2"
    scored = read_customers(tmp_path / "out").set_index("user_id")
    assert sorted(answered.index) == sorted(scored.index)
    pd.testing.assert_series_equal(answered["purchase_intent"], scored.loc[answered.index, "purchase_intent"], rtol=1e-5)
    pd.testing.assert_series_equal(answered["churn_risk"], scored.loc[answered.index, "churn_risk"], rtol=1e-5)
    assert [list(p) for p in answered["top_products"]] == [list(p) for p in scored.loc[answered.index, "top_products"]]
    assert (scored["model_run_id"] == runs[1]).all()
