"""A one-epoch training on tiny data writes a real MLflow run, the baselines beside it and a registered version."""
from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from training.config import TrainRunConfig
from events.config_io import load_config
from events.errors import UserFacingError
from training.train import train
from tests.factories import random_events, tiny_run_overrides, write_events

pytestmark = pytest.mark.e2e


def tiny_config(data_dir, tmp_path, *extra: str) -> TrainRunConfig:
    return load_config(TrainRunConfig, None, [
        *tiny_run_overrides(data_dir), "train.max_epochs=1", "train.progress_bar=false",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"output_dir={tmp_path}/runs", *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    data = tmp / "data"
    data.mkdir()
    write_events(random_events(n_users=80, days=30), data)
    result = train(tiny_config(data, tmp))
    return result, tmp, data


def test_run_has_metrics_plots_bundle_and_lineage(trained) -> None:
    result, _, _ = trained
    mlflow.set_tracking_uri(result["tracking_uri"])
    client = MlflowClient()
    model_run = client.get_run(result["model_run_id"])
    for key in ("test_intent_pr_auc", "test_churn_pr_auc", "test_next_mrr_at_20", "test_next_recall_at_20"):
        assert key in model_run.data.metrics
    assert len(client.get_metric_history(result["model_run_id"], "val_loss")) >= 1
    # Training metrics are logged only on the logger's steps and an epoch's last: an epoch shorter than
    # log_every_n_steps (3 batches here) must still report its throughput.
    throughput = client.get_metric_history(result["model_run_id"], "events_per_s_epoch")
    assert len(throughput) == 1 and throughput[0].value > 0
    bundle = {f.path for f in client.list_artifacts(result["model_run_id"], "bundle")}
    assert {"bundle/model.safetensors", "bundle/encoder.json", "bundle/model_config.json", "bundle/meta.json"} <= bundle
    parent = client.get_run(result["parent_run_id"])
    assert parent.data.params["train.max_epochs"] == "1"
    assert parent.inputs.dataset_inputs, "data lineage logged through mlflow.log_input"
    plots = {f.path for f in client.list_artifacts(result["parent_run_id"], "plots")}
    assert {"plots/intent_roc_pr.png", "plots/churn_calibration.png", "plots/next_recall_at_k.png",
            "plots/learning_curves.png"} <= plots


def test_baselines_are_sibling_runs_with_the_same_metric_names(trained) -> None:
    result, _, _ = trained
    runs = mlflow.search_runs(experiment_names=["session-signals"],
                              filter_string=f"tags.mlflow.parentRunId = '{result['parent_run_id']}'")
    methods = set(runs["tags.method"])
    assert {"model", "base_rate", "lightgbm_intent", "rfm_logreg_churn", "popularity", "vsknn"} <= methods
    by_method = runs.set_index("tags.method")
    assert by_method.loc["popularity", "metrics.test_next_mrr_at_20"] >= 0
    assert by_method.loc["base_rate", "metrics.test_intent_roc_auc"] == pytest.approx(0.5)


def test_registered_version_has_challenger_and_first_becomes_champion(trained) -> None:
    result, _, _ = trained
    mlflow.set_tracking_uri(result["tracking_uri"])
    client = MlflowClient()
    reg = result["registration"]
    assert int(client.get_model_version_by_alias("session-signals", "challenger").version) == reg["version"]
    assert int(client.get_model_version_by_alias("session-signals", "champion").version) == reg["version"]


def test_unknown_config_key_is_an_error(tmp_path) -> None:
    with pytest.raises(UserFacingError, match="train.max_epoch"):
        load_config(TrainRunConfig, None, ["train.max_epoch=3"])


def test_default_config_file_is_what_runs_without_a_config() -> None:
    from pathlib import Path

    default = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
    assert load_config(TrainRunConfig, default) == load_config(TrainRunConfig)


def test_experiment_opens_on_the_runs_table(trained) -> None:
    """Tagged as model training, so the MLflow UI shows the runs table, not the GenAI overview."""
    result, _, _ = trained
    mlflow.set_tracking_uri(result["tracking_uri"])
    experiment = MlflowClient().get_experiment_by_name("session-signals")
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"


def test_log_has_one_line_per_epoch_naming_the_restored_one(tmp_path, caplog) -> None:
    """Redirected to a file, the log says what each epoch did and which epoch was kept."""
    import logging

    data = tmp_path / "data"
    data.mkdir()
    write_events(random_events(n_users=40, days=30, seed=2), data)
    cfg = tiny_config(data, tmp_path, "train.max_epochs=2", "baselines.enabled=false", "tracking.register=false")
    with caplog.at_level(logging.INFO):
        train(cfg)
    epochs = [r.getMessage() for r in caplog.records if r.name == "training.epoch_log"]
    assert len(epochs) == 2 and epochs[0].startswith("epoch 1/2") and "val_loss" in epochs[0]
    restored = [r.getMessage() for r in caplog.records if r.getMessage().startswith("restored epoch")]
    assert len(restored) == 1 and "the best of the 2 run" in restored[0]


def test_refit_trains_the_final_model_on_train_and_validation(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_events(random_events(n_users=40, days=30, seed=3), data)
    result = train(tiny_config(data, tmp_path, "train.max_epochs=2", "train.refit=true", "baselines.enabled=false",
                               "tracking.register=false"))
    mlflow.set_tracking_uri(result["tracking_uri"])
    model_run = MlflowClient().get_run(result["model_run_id"])
    assert 1 <= int(model_run.data.params["refit.epochs"]) <= 2
    assert "test_next_recall_at_20" in model_run.data.metrics
