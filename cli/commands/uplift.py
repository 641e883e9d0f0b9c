"""Give a trained model an uplift output from a shop's randomised treatment, and measure it.

A message or discount was sent at random to a share of shoppers mid-session (`signals simulate ...
treatment.enabled=true` writes such a shop: treatments.parquet, and the true uplift in oracle_uplift.parquet).
The model's frozen encoder reads every decision point, and an uplift head of models/uplift.py is fitted on
the decision points of the model's training split: by default the "wide" design (the intent head's answer
for the control arm, plus an effect of the decision's explicit state: how soon the shopper came back, earlier
purchases and sessions, the cart now), the best on the benchmark (benchmarks/README.md, "Uplift"). Name
several in designs=[...] and the one with the best validation transformed-outcome MSE (select_on=tau_mse;
or select_on=qini) is kept; fine_tune.enabled=true also fits each on a copy of the encoder taught the
baseline's session features (candidates DESIGN_taught), which moves the other signals a little (the results
say by how much: fine_tune). On the test points it is compared with random targeting, "target the highest
intent", a LightGBM T-learner on session features and (simulated data) the oracle, by the Qini coefficient
(95% bootstrap interval), AUUC and uplift in the top 10%. The split is the model's own (its meta.json), so test points were never inputs of its
training.

written to --out:
  bundle/                 the model with its uplift head (serve it: signals serve --bundle OUT/bundle;
                          /predict then answers `uplift` and the `persuadable` segment)
  uplift_comparison.md    the test table
  uplift_results.json     validation and test figures of every method, decision-point counts
An MLflow run (experiment session-signals-uplift) records the same, with the bundle, and the bundle is
registered as a new version of --model-name with the alias --alias (default `uplift`; champion and challenger
stay where they are), so the served model gets its uplift head by `signals serve --alias uplift` (or by
promoting that version, or naming it in an experiment's arms); --no-register skips that.

examples:
  signals simulate --events 150000 --out data/generated/treated treatment.enabled=true
  signals train data.path=data/generated/treated split.test_days=14
  signals uplift data/generated/treated --model champion --out data/uplift
  signals serve --alias uplift                    # /predict answers `uplift` and `persuadable`
  signals uplift data/generated/treated designs=[wide,shift] fine_tune.enabled=true --model 3 --out data/uplift
"""
from __future__ import annotations

import argparse

HELP = "fit and measure an uplift head (whom a message changes) on a randomised treatment"
MLFLOW_EXPERIMENT = "session-signals-uplift"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.usage = ("signals uplift DATA [key=value ...] --out DIR [--model MODEL] [--model-name NAME] [--alias ALIAS] "
               "[--no-register] [--tracking-uri URI]")
    p.add_argument("inputs", nargs="+", metavar="DATA [key=value]",
                   help="a folder with events.parquet and treatments.parquet (and, simulated, oracle_uplift.parquet), "
                        "then overrides: designs=[wide] (any of two_heads,shift,segments,wide) select_on=tau_mse (or qini) seed=0 "
                        "fit.max_epochs=100 fit.patience=10 fit.lr=0.001 "
                        "fit.weight_decay=0.0001 fit.effect_weight_decay=0.01 fit.batch_size=512 fine_tune.enabled=false "
                        "fine_tune.max_epochs=6 fine_tune.lr=0.001 fine_tune.anchor_weight=1.0")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--model", default="champion", help="the trained model: registry alias, version number or bundle "
                   "folder (default champion); it must have been trained on DATA's events (its split is used)")
    p.add_argument("--model-name", default="session-signals", help="registered model name (default session-signals)")
    p.add_argument("--alias", default="uplift", help="registry alias given to the new version with the uplift head "
                   "(default uplift; serve it with `signals serve --alias uplift`)")
    p.add_argument("--no-register", action="store_true", help="log the run only: register no version")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)")


def run(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from audiences.model_source import fetch_model
    from events.config_io import load_config
    from events.errors import UserFacingError
    from models.uplift import UPLIFT_DESIGNS
    from training.uplift import SELECTION_CRITERIA, UpliftRunConfig, fit_uplift, table
    from training.uplift_tracking import log_uplift, register_uplift

    data, *overrides = args.inputs
    cfg = load_config(UpliftRunConfig, None, overrides)
    unknown = [d for d in cfg.designs if d not in UPLIFT_DESIGNS]
    if unknown or not cfg.designs:
        raise UserFacingError(f"designs: {unknown or '[]'} not among {', '.join(UPLIFT_DESIGNS)}")
    if cfg.select_on not in SELECTION_CRITERIA:
        raise UserFacingError(f"select_on: {cfg.select_on!r} is not one of {', '.join(SELECTION_CRITERIA)}")
    if args.alias in ("champion", "challenger"):
        raise UserFacingError(f"--alias {args.alias}: that alias moves only by training's champion rule; give another "
                              "(default uplift) and promote the version as usual")
    out = Path(args.out)
    with tempfile.TemporaryDirectory(prefix="signals-uplift-") as tmp:
        bundle, identity = fetch_model(args.model, args.model_name, args.tracking_uri or "", Path(tmp))
        try:
            summary = fit_uplift(Path(data), bundle, out, cfg)
        except ValueError as err:
            raise UserFacingError(str(err)) from None
    run_id = log_uplift(args.tracking_uri or "", MLFLOW_EXPERIMENT, Path(data), identity.model_dump(), cfg, out, summary)
    print(table(summary))
    print(f"bundle with the {summary['chosen']} uplift head: {out / 'bundle'}")
    if not args.no_register:
        version = register_uplift(run_id, args.model_name, args.alias, identity.model_dump(), summary)
        print(f"registered as {args.model_name} version {version}, alias {args.alias}: signals serve --alias {args.alias}")
    return 0
