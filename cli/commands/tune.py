"""Tune hyper-parameters with Optuna: TPE sampling over the config's search space, poor trials pruned at
a validation epoch, every trial a nested MLflow run under the study's run; then the best config is
retrained with baselines, registered as session-signals@challenger and promoted by the champion rule.

Config: the TrainRunConfig sections (the base config of every trial) plus a `tune:` section with
search_space, metric, direction, sampler, pruner (see configs/tune-default.yaml); unknown keys are
errors. With no config it tunes the default model on the embedded simulated data.

--trials N is the number of finished (complete or pruned) trials the study should hold. Workers on the
same --storage and --study share the study and each stops when it is reached; a killed run resumes
when started again (its interrupted trial is failed and re-queued after tune.grace_period seconds).

examples:
  signals tune --trials 20
  signals tune --config configs/tune-default.yaml --trials 50 data.path=data/loaded/rees46
  # several workers, one study (run on each machine; one of them without --no-retrain, or rerun at the end):
  signals tune --storage postgresql://optuna:secret@db:5432/optuna --study rees46-v1 --trials 100 --no-retrain
  optuna-dashboard sqlite:///mlruns/optuna.db
"""
from __future__ import annotations

import argparse

from cli.commands.run_options import add_run_options, apply_tracking_uri, run_overrides

HELP = "tune hyper-parameters with Optuna (pruning, MLflow runs per trial, shared studies), register the best"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_options(p, "YAML config: TrainRunConfig sections plus a tune: section (configs/tune-default.yaml)",
                    "train.max_epochs=3 tune.pruner.kind=hyperband")
    p.add_argument("--trials", type=int, help="finished trials the study should hold (default: tune.trials, 20)")
    p.add_argument("--storage", help="Optuna storage URL (default: $OPTUNA_STORAGE or sqlite:///mlruns/optuna.db); "
                                     "postgresql://user:pw@host/db to share a study between machines")
    p.add_argument("--study", help="study name (default: <dataset>-<hash of search space, objective and base config>)")
    p.add_argument("--timeout", type=float, help="seconds after which this worker starts no new trial")
    p.add_argument("--no-retrain", action="store_true",
                   help="do not retrain/register the best config at the end (for all but one worker)")


def run(args: argparse.Namespace) -> int:
    import logging

    from events.config_io import load_config
    from training.tuning.config import TuneRunConfig
    from training.tuning.runner import tune

    cfg = load_config(TuneRunConfig, args.config, run_overrides(args))
    apply_tracking_uri(cfg, args)
    # Set directly, not as key=value overrides: URLs are not YAML.
    if args.trials is not None:
        cfg.tune.trials = args.trials
    if args.storage:
        cfg.tune.storage = args.storage
    if args.study:
        cfg.tune.study = args.study
    if args.timeout is not None:
        cfg.tune.timeout = args.timeout
    if args.no_retrain:
        cfg.tune.retrain = False
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    tune(cfg, verbose=verbose)
    return 0
