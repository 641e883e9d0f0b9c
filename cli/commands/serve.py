"""Serve real-time signals over HTTP with BentoML: POST /predict (one shopper), POST /predict_batch
(up to 256), readiness at /readyz, liveness at /livez, OpenAPI at /docs.json, metrics at /metrics.

The model is session-signals@champion from the MLflow registry unless --bundle or --alias says otherwise
(environment: SIGNALS_MODEL_NAME, SIGNALS_MODEL_ALIAS, MLFLOW_TRACKING_URI, SIGNALS_BUNDLE). Segment
thresholds: serving/segments.yaml. Ctrl-C stops the server.

examples:
  signals serve
  signals serve --port 3000 --alias challenger
  signals serve --bundle path/to/bundle
"""
from __future__ import annotations

import argparse

HELP = "serve intent, churn and next-product signals over HTTP (BentoML)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 to accept other machines)")
    p.add_argument("--bundle", help="serve this bundle folder instead of a registered model")
    p.add_argument("--alias", help="registry alias to serve (default champion)")
    p.add_argument("--model-name", help="registered model name (default session-signals)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from serving.process import start_server, stop_server
    from events.errors import UserFacingError

    env = {}
    if args.bundle:
        if not Path(args.bundle).is_dir():
            raise UserFacingError(f"--bundle {args.bundle}: no such folder")
        env["SIGNALS_BUNDLE"] = str(Path(args.bundle).resolve())
    for value, name in ((args.alias, "SIGNALS_MODEL_ALIAS"), (args.model_name, "SIGNALS_MODEL_NAME"),
                        (args.tracking_uri, "MLFLOW_TRACKING_URI")):
        if value:
            env[name] = value
    proc = start_server(args.port, env, host=args.host)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # the server runs in its own process group: end it ourselves
        return 0
    finally:
        stop_server(proc)
