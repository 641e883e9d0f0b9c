"""The project's model under the peers harness's next-item protocol, beside the peers' own figures.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.peers.run --datasets diginetica yoochoose taobao --seeds 3 \\
        --out benchmarks/peers/results/

For each dataset: `data.load` + `evaluate.apply_protocol` of the harness (`../shared/peers`, or `--peers`,
or `$PEERS_DIR`), then per seed `SessionSignalsPeer.fit(split.train, split.n_items)` (the project's
`prepare` + `fit` with `--config-file`, default configs/yoochoose.yaml, plus `--config key=value`
overrides) and `evaluate.evaluate`. Prints and writes (`<out>/<tag>.md`, `<out>/<tag>.json`) a table of
R@20 / MRR@20, mean and spread over seeds, beside the peers' figures in the harness's results.json.
Results are rewritten after every run, so an interrupted run keeps what it finished.
Nothing is written under the harness's folder.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PEERS = Path(os.environ.get("PEERS_DIR", ROOT.parent / "shared" / "peers"))
DATASETS = ("diginetica", "yoochoose", "taobao")
PEER_MODELS = ("S-POP", "Cooc-last", "V-SKNN", "RecBole-GRU4Rec", "RecBole-SASRec")
METRICS = ("recall@20", "mrr@20")
log = logging.getLogger("benchmarks.peers")


def import_harness(peers: Path):
    """The harness's `data` and `evaluate` modules, imported from its folder (never copied or edited)."""
    if not (peers / "evaluate.py").is_file():
        raise SystemExit(f"peers harness not found at {peers} (pass --peers or set PEERS_DIR)")
    sys.path.insert(0, str(peers))
    import evaluate as peers_evaluate

    import data as peers_data
    return peers_data, peers_evaluate


def summarise(values: list[float]) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "min": float(a.min()), "max": float(a.max()), "n": len(a)}


def fmt(s: dict) -> str:
    if s["n"] == 1:
        return f"{s['mean']:.3f}"
    return f"{s['mean']:.3f} ± {s['sd']:.3f}"


def summarise_runs(mine: list[dict]) -> dict:
    """Mean and spread over the seeds of one dataset, and what the table shows beside them."""
    oov = mine[-1]["fit"].get("test_targets_outside_vocabulary")
    return {**{k: summarise([r[k] for r in mine]) for k in (*METRICS, "recall@20_seen_removed", "mrr@20_seen_removed")},
            "seeds": [r["seed"] for r in mine],
            "epochs": ", ".join(f"{r['fit']['best_epoch']}/{r['fit']['epochs_run']}" for r in mine),
            "fit_seconds": float(np.mean([r["fit_seconds"] for r in mine])),
            "eval_seconds": float(np.mean([r["eval_seconds"] for r in mine])),
            "oov_targets": "" if oov is None else f"{oov:.1%}"}


def markdown(summary: dict, peers: dict, stats: dict, tag: str, command: str) -> str:
    lines = [f"## peers protocol: {tag}", "", f"`{command}`", "",
             ("R@20 / MRR@20 over all (session, position) predictions, whole catalogue, ties against the model "
             "(`../shared/peers/PROTOCOL.md`). Project model: mean ± sd over seeds (sample sd; [min, max] of R@20 "
             "in the seeds column). Peers: the harness's results.json (one run each)."), "",
             "| dataset (predictions) | session-signals R@20 | MRR@20 | seeds [R@20 min, max] | epochs (best/run) | fit s "
             "| targets out of vocab | "
             + " | ".join(PEER_MODELS) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * len(PEER_MODELS)]
    for ds, s in summary.items():
        r, m = s["recall@20"], s["mrr@20"]
        peer = " | ".join(f"{peers[ds][p]['recall@20']:.3f} / {peers[ds][p]['mrr@20']:.3f}" if p in peers.get(ds, {})
                          else "" for p in PEER_MODELS)
        lines.append(f"| {ds} ({stats[ds]['n_predictions']:,}) | {fmt(r)} | {fmt(m)} | {r['n']} [{r['min']:.3f}, {r['max']:.3f}] "
                     f"| {s['epochs']} | {s['fit_seconds']:.0f} | {s['oov_targets']} | {peer} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--seeds", type=int, default=3, help="number of seeds (first-seed, first-seed + 1, ...)")
    ap.add_argument("--first-seed", type=int, default=42, help="the project's default train.seed")
    ap.add_argument("--config-file", default=str(ROOT / "configs" / "yoochoose.yaml"),
                    help="the project's run config (YAML) every dataset trains with")
    ap.add_argument("--config", "--set", dest="overrides", nargs="+", action="extend", default=[],
                    metavar="KEY=VALUE", help="config overrides, e.g. --config train.max_epochs=30 split.val_days=0.25")
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 short epoch of a narrow model")
    ap.add_argument("--peers", type=Path, default=DEFAULT_PEERS, help="the harness folder (default ../shared/peers)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "peers" / "results")
    ap.add_argument("--tag", default=None, help="name of the result files (default: 'default', 'quick' or the overrides)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the 2-core machine is shared)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the (dataset, seed) runs already in <out>/<tag>.json (same config) and add the rest")
    ap.add_argument("--gap-seconds", type=float, default=None,
                    help="spacing of a prefix's events (default: median within-session gap of the train frame)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("lightning", "lightning.pytorch", "lightning.fabric", "training.memory_check", "training.in_memory"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*No positive samples.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")

    from benchmarks.peers.adapter import QUICK_OVERRIDES, SessionSignalsPeer

    peers_data, peers_evaluate = import_harness(args.peers.resolve())
    overrides = [*(QUICK_OVERRIDES if args.quick else ()), *args.overrides]
    tag = args.tag or ("quick" if args.quick else "default" if not args.overrides else
                       "_".join(o.replace("=", "-").replace(".", "-") for o in args.overrides))
    command = "python -m benchmarks.peers.run " + " ".join(sys.argv[1:] if argv is None else argv)
    peers_results = json.loads((args.peers / "results.json").read_text())
    peers = {}
    for r in peers_results["results"]:
        peers.setdefault(r["dataset"], {})[r["model"]] = {k: r[k] for k in METRICS}
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = [args.first_seed + i for i in range(args.seeds)]
    runs, stats = [], {}
    previous = args.out / f"{tag}.json"
    if args.resume and previous.is_file():
        old = json.loads(previous.read_text())
        if (old["config_file"], old["overrides"]) != (args.config_file, overrides):
            raise SystemExit(f"--resume: {previous} was made with another config ({old['config_file']} {old['overrides']})")
        runs, stats = old["runs"], old["datasets"]
        log.info("resuming %s: %d runs kept", previous, len(runs))
    started = time.perf_counter()
    def write() -> str:
        """Rewrite <tag>.json and <tag>.md from every run so far; returns the table."""
        summary = {d: summarise_runs([r for r in runs if r["dataset"] == d]) for d in DATASETS
                   if any(r["dataset"] == d for r in runs)}
        table = markdown(summary, peers, stats, tag, command)
        out = {"command": command, "tag": tag, "config_file": args.config_file, "overrides": overrides,
               "seeds": sorted({r["seed"] for r in runs}),
               "environment": {"python": platform.python_version(), "torch": torch.__version__,
                               "numpy": np.__version__, "cpu_count": os.cpu_count(),
                               "torch_threads": torch.get_num_threads()},
               "elapsed_seconds": round(time.perf_counter() - started, 1),
               "datasets": stats, "summary": summary, "peers": peers, "runs": runs}
        (args.out / f"{tag}.json").write_text(json.dumps(out, indent=1, default=str))
        (args.out / f"{tag}.md").write_text(table)
        return table

    for ds in args.datasets:
        split = peers_evaluate.apply_protocol(ds, *peers_data.load(ds))
        stats[ds] = split.stats
        log.info("== %s: %d train events, %d items, %d test predictions", ds, split.stats["train_events"],
                     split.n_items, split.stats["n_predictions"])
        _, targets = peers_evaluate.prefixes_and_targets(split.test_sessions)
        for seed in seeds:
            if any(r["dataset"] == ds and r["seed"] == seed for r in runs):
                continue
            model = SessionSignalsPeer(args.config_file, overrides, seed=seed, gap_seconds=args.gap_seconds)
            t0 = time.perf_counter()
            model.fit(split.train, split.n_items)
            fit_s = time.perf_counter() - t0
            res = peers_evaluate.evaluate(model, split)
            report = {k: v for k, v in model.fit_report.items() if k != "resolved"}
            # Diagnostic only (nothing is fitted on it): test targets the model can never rank in the top 20.
            report["test_targets_outside_vocabulary"] = float(np.mean(~model.known_items[targets]))
            runs.append({"dataset": ds, "seed": seed, **res, "fit_seconds": round(fit_s, 1), "fit": report,
                         "hyperparameters": model.params})
            log.info("%s seed %d: R@20 %.4f MRR@20 %.4f (seen removed %.4f / %.4f); %d epochs, best %s; "
                         "fit %.0f s, eval %.1f s", ds, seed, res["recall@20"], res["mrr@20"],
                         res["recall@20_seen_removed"], res["mrr@20_seen_removed"], report["epochs_run"],
                         report["best_epoch"], fit_s, res["eval_seconds"])
            table = write()
    table = write()
    print("\n" + table)
    print(f"wrote {args.out / (tag + '.md')} and {tag}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
