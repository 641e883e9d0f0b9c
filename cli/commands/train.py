"""Train the multi-task model, evaluate it beside the baselines on the same temporal split, track the
run in MLflow and register the model as session-signals@challenger (champion by the README's rule).

Config: a YAML file (see configs/) plus key=value overrides; unknown keys are errors. With no
config and no data.path it trains the default model on the embedded simulated data.

Resuming: every epoch writes a checkpoint (weights, optimiser, loop and early-stopping state) under
output_dir/<model run id>/checkpoints. Run again with the same config and data after a kill, a crash or
Ctrl-C, and it continues from the last finished epoch in the same MLflow run, with the same result as an
uninterrupted run; a finished run is never continued (the rerun is a new run).

examples:
  signals train
  signals train --config configs/taobao.yaml train.max_epochs=3
  signals train data.path=data/loaded/rees46 model.encoder=transformer --accelerator gpu
  signals train data.path=data/loaded/rees46 --accelerator gpu train.compile=true train.deterministic=false
  signals train --resume 6017013521584c47af0e8fc2680e57bc      # continue this killed run (same config)
"""
from __future__ import annotations

import argparse
import signal

from cli.commands.run_options import add_run_options, apply_tracking_uri, run_overrides

HELP = "train, evaluate beside baselines, track in MLflow and register the model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_options(p, "YAML config file (sections: data, split, labels, model, train, baselines, tracking)",
                    "train.max_epochs=3")
    p.add_argument("--devices", type=int, help="devices per node (GPUs, or CPU processes with --strategy ddp)")
    p.add_argument("--num-nodes", type=int, help="machines taking part (DDP across nodes; see README)")
    p.add_argument("--strategy", help="Lightning strategy, e.g. ddp (one process per device, sharded data)")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--resume", metavar="RUN_ID",
                        help="continue this killed or failed run (the parent run id printed by `signals train`, "
                             "or its model run) from its last checkpoint; give the run's config and overrides. "
                             "Without it, the latest run of the same config and data is continued when it was "
                             "killed or failed (single-process trainings only)")
    resume.add_argument("--fresh", action="store_true",
                        help="start a new run even when a killed run of the same config and data could continue")


def run(args: argparse.Namespace) -> int:
    from events.config_io import load_config, redact_uri
    from training.config import TrainRunConfig
    from training.resume import AUTO, NEVER
    from training.train import train

    overrides = run_overrides(args)
    if args.devices:
        overrides.append(f"train.devices={args.devices}")
    if args.num_nodes:
        overrides.append(f"train.num_nodes={args.num_nodes}")
    if args.strategy:
        overrides.append(f"train.strategy={args.strategy}")
    cfg = load_config(TrainRunConfig, args.config, overrides)
    # SIGTERM (a scheduler, `kill`) ends the MLflow runs as failed, like Ctrl-C; kill -9 cannot be caught:
    # the next run on this host marks such runs KILLED (training.tracking.end_runs_of_dead_processes).
    signal.signal(signal.SIGTERM, _interrupt)
    apply_tracking_uri(cfg, args)
    result = train(cfg, resume=args.resume or (NEVER if args.fresh else AUTO))
    if not result:  # a non-zero DDP rank: rank 0 reports
        return 0
    reg = result["registration"]
    if reg:
        print(f"registered {reg['model_name']} v{reg['version']} ({'champion' if reg['champion'] else 'challenger'}): {reg['reason']}")
    uri = redact_uri(result["tracking_uri"])
    print(f"MLflow: {uri}  parent run {result['parent_run_id']}  (mlflow ui --backend-store-uri {uri})")
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
