"""`make demo`: the main job end to end on the embedded default data.

simulate -> train (beside baselines) -> track in MLflow -> register -> serve with BentoML -> query -> stop
-> score every customer into audience files (`signals score`).
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import httpx
import pandas as pd

from training.config import TrainRunConfig
from cli.log_setup import configure_logging
from cli.main import main as cli_main
from events.config_io import load_config
from training.train import train

log = logging.getLogger("demo")
AUDIENCES_OUT = Path("data/audiences/demo")


def sample_request(events: pd.DataFrame) -> dict:
    """The latest session of the most active recent shopper, as the activation layer would send it."""
    recent = events[events["ts"] >= events["ts"].max() - pd.Timedelta(days=1)]
    user = recent["user_id"].value_counts().index[0]
    mine = events[events["user_id"] == user].sort_values("ts").tail(20)
    cols = ["ts", "event_type", "product_id", "category", "brand", "price", "session_id"]
    rows = mine[cols].assign(ts=mine["ts"].map(lambda t: t.isoformat())).to_dict("records")
    rows = [{k: v for k, v in r.items() if v is not None and v == v} for r in rows]  # drop null/NaN fields
    return {"user_id": str(user), "events": rows, "k": 5, "as_of": mine["ts"].max().isoformat(),
            "filters": {"exclude_purchased": True}}


def main() -> int:
    configure_logging()
    cfg = load_config(TrainRunConfig, None, ["train.progress_bar=false"])
    result = train(cfg)
    reg = result["registration"]
    print(f"\nregistered {reg['model_name']} v{reg['version']} as challenger"
          f"{' and champion' if reg['champion'] else ''} ({reg['reason']})")

    from events.loaders import read_events
    from events.source import dataset_files
    from serving.process import free_port, start_server, stop_server, wait_until_ready

    events_path = dataset_files(cfg.data, cfg.labels.churn_horizon_days)[2]
    request = sample_request(read_events(events_path))
    # Serve the version just trained (the challenger); production serves the champion by default.
    port = free_port()  # never a fixed port: another server there would answer in our place
    server = start_server(port, {"MLFLOW_TRACKING_URI": result["tracking_uri"], "SIGNALS_MODEL_ALIAS": "challenger"})
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", timeout_s=120, proc=server)
        response = httpx.post(f"http://127.0.0.1:{port}/predict", json=request, timeout=30)
        response.raise_for_status()
        answered = response.json()["model"]
        if (answered["version"], answered["run_id"]) != (str(reg["version"]), result["model_run_id"]):
            raise RuntimeError(f"the server on port {port} answered with {answered}, not the version just trained")
        print(f"\nPOST /predict for user {request['user_id']} ({len(request['events'])} recent events):")
        print(json.dumps(response.json(), indent=2))
    finally:
        stop_server(server)
    print("\nserver stopped.")
    # The same version scores every customer of the shop in batch: the audiences an activation layer imports.
    print(f"\nsignals score {events_path.parent} --model {reg['version']} --out {AUDIENCES_OUT}")
    code = cli_main(["score", str(events_path.parent), "--model", str(reg["version"]), "--out", str(AUDIENCES_OUT),
                     "--tracking-uri", result["tracking_uri"]])
    print("\nOpen the runs with: .venv/bin/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --workers 1")
    return code


if __name__ == "__main__":
    sys.exit(main())
