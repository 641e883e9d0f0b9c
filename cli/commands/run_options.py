"""Options shared by the commands that train (`train`, `tune`): config file, overrides, device, tracking."""
from __future__ import annotations

import argparse


def add_run_options(p: argparse.ArgumentParser, config_help: str, overrides_example: str) -> None:
    p.add_argument("--config", help=config_help)
    p.add_argument("overrides", nargs="*", metavar="key=value", help=f"config overrides, e.g. {overrides_example}")
    p.add_argument("--accelerator", help="cpu or gpu (gpu also switches to bf16 mixed precision; add "
                   "train.compile=true train.deterministic=false for the fast compiled step: a deterministic "
                   "compiled step is about 4x slower on a GPU)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)")


def run_overrides(args: argparse.Namespace) -> list[str]:
    """The key=value overrides, with the device options turned into config keys."""
    overrides = list(args.overrides)
    keys = {item.partition("=")[0].strip() for item in overrides}
    if "data.path" in keys and "data.name" not in keys:
        # A dataset's name follows its data: other data under a dataset's config must not carry its name
        # (lineage, the MLflow run name and the champion rule's dataset key all read it).
        overrides.append("data.name=''")
    if args.accelerator:
        overrides.append(f"train.accelerator={args.accelerator}")
        if args.accelerator == "gpu":
            overrides.append("train.precision=bf16-mixed")
    return overrides


def apply_tracking_uri(cfg, args: argparse.Namespace) -> None:
    # Set directly rather than as a key=value override: a URL is not YAML.
    if args.tracking_uri:
        cfg.tracking.uri = args.tracking_uri
