"""The notebooks run top to bottom (outputs stay out of git: executed here into memory only)."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.test_train_e2e import tiny_config
from tests.factories import random_events, write_events
from training.train import train

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
pytestmark = pytest.mark.e2e


def execute(name: str, env: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name}: outputs must be stripped in git"
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return nb


def test_explore_events_notebook_runs() -> None:
    nb = execute("01-explore-events.ipynb", {"NOTEBOOK_SIM_EVENTS": "20000"})
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3


def test_compare_runs_notebook_draws_model_and_baselines(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_events(random_events(n_users=60, days=30), data)
    result = train(tiny_config(data, tmp_path))
    nb = execute("02-compare-runs.ipynb", {"MLFLOW_TRACKING_URI": result["tracking_uri"]})
    table = next(o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "text/html" in o.get("data", {}))
    for method in ("model", "popularity", "vsknn", "lightgbm_intent"):
        assert method in table["data"]["text/html"]
