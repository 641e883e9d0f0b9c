"""Serve real-time signals over HTTP with BentoML: POST /predict (one shopper), POST /predict_batch
(up to 256), readiness at /readyz, liveness at /livez, OpenAPI at /docs.json, metrics at /metrics.

The model is session-signals@champion from the MLflow registry unless --bundle or --alias says otherwise
(environment: SIGNALS_MODEL_NAME, SIGNALS_MODEL_ALIAS, MLFLOW_TRACKING_URI, SIGNALS_BUNDLE). Segment
thresholds: serving/segments.yaml. Ctrl-C or SIGTERM stops the server and its workers.

A registered model is resolved to one version and fetched once, before the server starts: every worker
serves that version until a restart (a moved alias never takes effect half-way), and a missing alias or
missing artifacts end the command at once with the reason (exit 2) instead of a restart loop.

With --experiment FILE (configs/experiment.yaml) the traffic is split between registry aliases, versions
or bundles by a stable hash of the request's user_id and the experiment's name (same shopper, same arm, in
every worker, replica and restart); every arm's version is pinned at startup and loaded by every worker, a
holdout arm gets no model answer, and each exposure is appended to the assignment log (JSON lines under
`log.dir`, written off the request path, flushed on Ctrl-C/SIGTERM). A bad file (shares not summing to 1,
a duplicate arm, an unknown alias or version, an unwritable log folder) ends the command at once with the
key and the reason (exit 2). Read the outcome with `signals experiment report`.

Limits and authentication come from the environment (serving/README.md): SIGNALS_MAX_WAIT_S (503 with
Retry-After beyond it), SIGNALS_MAX_HEADER_BYTES, SIGNALS_HEADER_TIMEOUT_S, SIGNALS_BODY_TIMEOUT_S, and
SIGNALS_API_TOKEN: when set, every route but /livez, /healthz and /readyz needs `Authorization: Bearer
<token>`. The token is read only from the environment, never from a flag (a command line is visible to
every user of the machine), and never logged.

examples:
  signals serve
  SIGNALS_API_TOKEN="$(cat /run/secrets/signals-token)" signals serve --host 0.0.0.0
  signals serve --port 3000 --alias challenger
  signals serve --bundle path/to/bundle
  signals serve --experiment configs/experiment.yaml
"""
from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from serving.settings import ServingSettings

HELP = "serve intent, churn and next-product signals over HTTP (BentoML)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 to accept other machines)")
    p.add_argument("--bundle", help="serve this bundle folder instead of a registered model")
    p.add_argument("--alias", help="registry alias to serve (default champion)")
    p.add_argument("--model-name", help="registered model name (default session-signals)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)")
    p.add_argument("--experiment", metavar="FILE",
                   help="split traffic between the arms of this experiment YAML (see configs/experiment.yaml); "
                        "not with --bundle or --alias: the arms name their models")


def run(args: argparse.Namespace) -> int:
    import json
    import logging
    import signal
    import tempfile
    from pathlib import Path

    from events.errors import UserFacingError
    from serving.model_source import pin_registered_model
    from serving.process import start_server, stop_server, wait_until_ready
    from serving.settings import ServingSettings

    log = logging.getLogger("signals.serve")
    env = {}
    if args.bundle:
        if not Path(args.bundle).is_dir():
            raise UserFacingError(f"--bundle {args.bundle}: no such folder")
        env["SIGNALS_BUNDLE"] = str(Path(args.bundle).resolve())
    for value, name in ((args.alias, "SIGNALS_MODEL_ALIAS"), (args.model_name, "SIGNALS_MODEL_NAME"),
                        (args.tracking_uri, "MLFLOW_TRACKING_URI")):
        if value:
            env[name] = value

    if args.experiment and (args.bundle or args.alias):
        raise UserFacingError("--experiment names its arms' models; drop --bundle and --alias")

    def stop(signum, frame):  # SIGTERM (a supervisor, `kill`) stops the server like Ctrl-C does
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    with tempfile.TemporaryDirectory(prefix="signals-serve-") as tmp:
        settings = ServingSettings.from_env({**os.environ, **env})
        if args.experiment:
            env["SIGNALS_EXPERIMENT"] = pinned_experiment(args.experiment, settings, Path(tmp))
        elif settings.bundle is None:
            try:
                path, identity = pin_registered_model(settings, Path(tmp))
            except RuntimeError as err:
                raise UserFacingError(str(err)) from None
            env["SIGNALS_BUNDLE"] = str(path)
            env["SIGNALS_BUNDLE_IDENTITY"] = json.dumps(identity.model_dump())
            log.info("serving %s v%s (run %s)", identity.name, identity.version, identity.run_id)
        proc = start_server(args.port, env, host=args.host)
        try:
            wait_until_ready(f"http://{args.host}:{args.port}", timeout_s=180, proc=proc)
            log.info("ready on http://%s:%d", args.host, args.port)
            code = proc.wait()
            log.error("the server exited with code %s", code)
            return code or 1
        except KeyboardInterrupt:  # the server runs in its own process group: end it ourselves
            return 0
        except (RuntimeError, TimeoutError) as err:
            log.error("%s; see its log above", err)
            return 1
        finally:
            stop_server(proc)


def pinned_experiment(path: str, settings: ServingSettings, dst: Path) -> str:
    """The experiment of `path`, validated and pinned (serving/experiment_pinning.py), as SIGNALS_EXPERIMENT;
    every error names the file and the key."""
    import logging

    from events.errors import UserFacingError
    from serving.experiment import load_experiment
    from serving.experiment_pinning import pin_experiment

    config = load_experiment(path)
    try:
        pinned = pin_experiment(config, settings, dst)
    except UserFacingError as err:
        raise UserFacingError(f"{path}: {err}") from None
    arms = ", ".join(f"{a.name} {a.share:.2%} ({_model_of(a.identity)})" for a in pinned.arms)
    logging.getLogger("signals.serve").info("experiment %s: %s; control %s; assignment log under %s",
                                            pinned.name, arms, pinned.control, pinned.log.dir)
    return pinned.to_json()


def _model_of(identity: dict | None) -> str:
    if identity is None:
        return "holdout, no model"
    return f"{identity['name']} v{identity['version']}" if identity["version"] else identity["name"]
