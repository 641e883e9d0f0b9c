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
    return request_body(str(user), events[events["user_id"] == user].sort_values("ts").tail(20))


def request_body(user: str, mine: pd.DataFrame) -> dict:
    """A /predict body for `user` from their canonical rows `mine` (sorted by time)."""
    cols = ["ts", "event_type", "product_id", "category", "brand", "price", "session_id"]
    rows = mine[cols].assign(ts=mine["ts"].map(lambda t: t.isoformat())).to_dict("records")
    rows = [{k: v for k, v in r.items() if v is not None and v == v} for r in rows]  # drop null/NaN fields
    return {"user_id": user, "events": rows, "k": 5, "as_of": mine["ts"].max().isoformat(),
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
    if code == 0:
        show_experiment(result["tracking_uri"], read_events(events_path))
    print("\nOpen the runs with: .venv/bin/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --workers 1")
    return code


def show_experiment(tracking_uri: str, events: pd.DataFrame, n_shoppers: int = 2000) -> None:
    """One experiment end to end: `signals serve --experiment` (champion / challenger / holdout), the shop's
    shoppers sent to it, a SIGTERM, the assignment log read back, and the readout on purchases simulated after
    those exposures with a known effect (the demo has no real future purchases)."""
    import shutil
    import signal
    import subprocess
    from pathlib import Path

    import yaml

    from events.exposures import read_exposures
    from experiments.readout import read_out
    from experiments.simulated import simulate_experiment
    from experiments.tracking import log_readout
    from serving.process import free_port, wait_until_ready

    folder = Path("data/experiments/demo")
    shutil.rmtree(folder, ignore_errors=True)  # a fresh log each demo: the readout reads this run only
    arms = {"champion": 0.45, "challenger": 0.45, "holdout": 0.10}
    config = {"name": "demo-champion-vs-challenger", "control": "champion", "log": {"dir": str(folder / "log")},
              "arms": [{"name": a, "share": s, **({"holdout": True} if a == "holdout" else {"alias": a})}
                       for a, s in arms.items()]}
    folder.mkdir(parents=True)
    (folder / "experiment.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"\nexperiment: signals serve --experiment {folder / 'experiment.yaml'} "
          "(champion 45%, challenger 45%, holdout 10%)")
    port = free_port()
    serve = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--experiment", str(folder / "experiment.yaml"),
                              "--port", str(port), "--tracking-uri", tracking_uri])
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", timeout_s=180, proc=serve)
        latest = events.sort_values("ts", kind="stable").groupby("user_id").tail(10)
        bodies = [request_body(str(u), rows) for u, rows in list(latest.groupby("user_id"))[:n_shoppers]]
        answered = 0
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for start in range(0, len(bodies), 100):
                response = client.post("/predict_batch", json={"shoppers": bodies[start:start + 100]})
                response.raise_for_status()
                answered += len(response.json()["results"])
            one = client.post("/predict", json=bodies[0]).json()
    finally:
        serve.send_signal(signal.SIGTERM)  # a clean stop: the server's workers flush the assignment log
        serve.wait(timeout=90)
    print(f"answered {answered} shoppers; one answer's experiment: {json.dumps(one['experiment'])}, model {one['model']}")
    log = read_exposures(folder / "log").exposures
    print(f"assignment log: {len(log)} exposures, per arm {log['arm'].value_counts().to_dict()}")
    sim = simulate_experiment(config["name"], arms, {"champion": 0.05, "challenger": 0.065, "holdout": 0.04}, 0,
                              exposures=log, seed=7)
    readout = read_out(folder / "log", sim.events, window_days=7)
    print("\nreadout on purchases simulated after the exposures "
          "(true conversion: champion 5%, challenger 6.5%, holdout 4%):")
    print(readout.markdown())
    run_id = log_readout(readout, {"log": str(folder / "log"), "events": "simulated outcomes"}, tracking_uri)
    print(f"logged to MLflow: run {run_id} (experiment session-signals-readouts)")


if __name__ == "__main__":
    sys.exit(main())
