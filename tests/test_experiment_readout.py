"""The readout: on simulated experiments with a known effect it recovers the effect inside its intervals (and
its intervals cover as often as they claim); it counts only purchases inside the window after the first
exposure; it flags a lost share of one arm's exposures; `signals experiment report` logs it to MLflow; the
notebook 03 runs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from events.exposures import record_configuration, write_exposures
from events.loaders.events_io import write_events
from experiments.readout import read_out
from experiments.simulated import simulate_experiment
from experiments.statistics import arm_table

ROOT = Path(__file__).resolve().parents[1]
SHARES = {"control": 0.5, "treatment": 0.4, "holdout": 0.1}
CONVERSION = {"control": 0.05, "treatment": 0.065, "holdout": 0.04}


def logged(folder: Path, exposures: pd.DataFrame, shares: dict[str, float] = SHARES, control: str = "control") -> Path:
    """Exposures as a server leaves them: log files and the manifest with the configured shares."""
    write_exposures(exposures, folder)
    record_configuration(folder, str(exposures["experiment"].iloc[0]),
                         {"control": control, "arms": [{"name": a, "share": s} for a, s in shares.items()]})
    return folder


def test_the_readout_recovers_a_known_effect_inside_its_intervals(tmp_path) -> None:
    sim = simulate_experiment("exp", SHARES, CONVERSION, n_users=40_000, seed=3)
    readout = read_out(logged(tmp_path, sim.exposures), sim.events, window_days=7)
    t, truth = readout.table, sim.truth
    for arm in SHARES:
        for metric in ("conversion", "revenue_per_user"):
            assert t.loc[arm, f"{metric}_ci_low"] <= truth.loc[arm, metric] <= t.loc[arm, f"{metric}_ci_high"], (arm, metric)
        if arm != "control":
            effect = truth.loc[arm, "conversion"] - truth.loc["control", "conversion"]
            assert t.loc[arm, "conversion_diff_ci_low"] <= effect <= t.loc[arm, "conversion_diff_ci_high"]
    assert t.loc["treatment", "conversion_diff_ci_low"] > 0 and t.loc["treatment", "conversion_p_value"] < 0.001
    assert not readout.sample_ratio.mismatch
    assert readout.counts.users == 40_000 and readout.counts.in_several_arms == 0


def test_the_intervals_of_the_differences_cover_the_true_effect_about_95_times_in_100() -> None:
    rng = np.random.default_rng(0)
    covered = {"conversion": [], "revenue_per_user": []}
    for _ in range(300):
        arm = rng.choice(["control", "treatment"], 4000)
        converted = (rng.random(4000) < np.where(arm == "control", 0.10, 0.12)).astype(int)
        revenue = converted * rng.lognormal(3.5, 0.6, 4000)  # true revenue difference: 0.02 * exp(3.68)
        row = arm_table(pd.DataFrame({"arm": arm, "converted": converted, "revenue": revenue}), "control",
                        {"control": 0.5, "treatment": 0.5}).loc["treatment"]
        for metric, effect in (("conversion", 0.02), ("revenue_per_user", 0.02 * np.exp(3.5 + 0.18))):
            covered[metric].append(row[f"{metric}_diff_ci_low"] <= effect <= row[f"{metric}_diff_ci_high"])
    for metric, hits in covered.items():
        assert 0.92 <= np.mean(hits) <= 0.98, (metric, np.mean(hits))


def test_only_purchases_in_the_window_after_the_first_exposure_count(tmp_path) -> None:
    t0 = pd.Timestamp("2026-03-05", tz="UTC")
    exposures = pd.DataFrame({"ts": [t0, t0 + pd.Timedelta(days=1), t0, t0, t0 + pd.Timedelta(days=2)],
                              "experiment": "exp", "arm": ["control", "control", "treatment", "treatment", "control"],
                              "user_id": ["a", "a", "b", "c", "c"], "model_version": "1", "request_id": list("vwxyz")})
    day = pd.Timedelta(days=1)
    purchases = [("a", t0 - day, 10.0), ("a", t0 + 2 * day, 20.0), ("a", t0 + 8 * day, 40.0),  # before, in, after
                 ("b", t0 + 6 * day, None), ("c", t0 + day, 5.0)]
    events = pd.DataFrame({"user_id": [u for u, _, _ in purchases] + ["z", "z"],
                           "ts": [t for _, t, _ in purchases] + [t0 - 3 * day, t0 + 20 * day],
                           "event_type": ["purchase"] * len(purchases) + ["view", "view"],
                           "price": [p for _, _, p in purchases] + [None, None]})
    readout = read_out(logged(tmp_path, exposures, {"control": 0.5, "treatment": 0.5}), events, window_days=7)
    t = readout.table
    assert t.loc["control", "users"] == 1 and t.loc["control", "revenue"] == 20.0  # a; c was in both arms
    assert t.loc["treatment", "users"] == 1 and t.loc["treatment", "converted"] == 1  # b, purchase without price
    assert readout.counts.in_several_arms == 1 and readout.counts.purchases_without_price == 1


def test_losing_a_tenth_of_one_arms_exposures_is_flagged_as_a_sample_ratio_mismatch(tmp_path) -> None:
    sim = simulate_experiment("exp", SHARES, CONVERSION, n_users=20_000, seed=4)
    treated = sim.exposures["user_id"].isin(sim.exposures.loc[sim.exposures["arm"] == "treatment", "user_id"].unique()[::10])
    readout = read_out(logged(tmp_path, sim.exposures[~treated]), sim.events, window_days=7)
    assert readout.sample_ratio.mismatch and "MISMATCH" in readout.markdown()


@pytest.mark.e2e
def test_signals_experiment_report_prints_the_readout_and_logs_it_to_mlflow(tmp_path) -> None:
    from mlflow import MlflowClient

    sim = simulate_experiment("exp", SHARES, CONVERSION, n_users=5000, seed=5)
    logged(tmp_path / "log", sim.exposures)
    write_events(sim.events, tmp_path / "events")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    done = subprocess.run([sys.executable, "-m", "cli.main", "experiment", "report", "--log", str(tmp_path / "log"),
                           "--events", str(tmp_path / "events"), "--window-days", "7", "--tracking-uri", uri],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "| treatment | " in done.stdout and "sample ratio" in done.stdout
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("session-signals-readouts").experiment_id])
    assert run.data.params["experiment"] == "exp" and "treatment.conversion_diff" in run.data.metrics
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"readout.md", "readout.json", "readout.png"}
    table = json.loads(Path(client.download_artifacts(run.info.run_id, "readout.json", str(tmp_path))).read_text())
    assert "treatment" in str(table)


@pytest.mark.e2e
def test_the_readout_notebook_runs_and_recovers_its_simulated_effect(tmp_path) -> None:
    from tests.test_notebooks import execute

    nb = execute("03-experiment-readout.ipynb", {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
                                                 "NOTEBOOK_EXPERIMENT_USERS": "20000"})
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert "true effect inside the interval: True" in "".join(o.get("text", "") for o in outputs)
