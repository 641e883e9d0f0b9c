"""How much the one input the protocol does not give (the time between a prefix's events) moves the figures.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.peers.gap_check --dataset yoochoose --gaps 1 median 300 3600

Fits the model once (as `benchmarks.peers.run` does, same config and overrides) and evaluates the same
fitted model with each prefix spacing. The default of `run` is `median` (the median within-session gap of
the train frame). A diagnostic: the spacing is never chosen on the test figures it prints.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

from benchmarks.peers.run import DATASETS, DEFAULT_PEERS, ROOT, import_harness, log


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="yoochoose", choices=DATASETS)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--gaps", nargs="+", default=["1", "median", "300", "3600"])
    ap.add_argument("--config-file", default=str(ROOT / "configs" / "yoochoose.yaml"))
    ap.add_argument("--config", "--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE")
    ap.add_argument("--peers", type=Path, default=DEFAULT_PEERS)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "peers" / "results")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("lightning", "lightning.pytorch", "training.memory_check", "training.in_memory"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*No positive samples.*")

    from benchmarks.peers.adapter import SessionSignalsPeer

    peers_data, peers_evaluate = import_harness(args.peers.resolve())
    split = peers_evaluate.apply_protocol(args.dataset, *peers_data.load(args.dataset))
    model = SessionSignalsPeer(args.config_file, args.overrides, seed=args.seed)
    model.fit(split.train, split.n_items)
    median = model.gap_seconds
    rows = []
    for gap in args.gaps:
        model.gap_seconds = median if gap == "median" else float(gap)
        res = peers_evaluate.evaluate(model, split)
        rows.append({"gap": gap, "gap_seconds": model.gap_seconds, **res})
        log.info("gap %s (%.1f s): R@20 %.4f MRR@20 %.4f", gap, model.gap_seconds, res["recall@20"], res["mrr@20"])
    lines = [(f"prefix spacing on {args.dataset}, seed {args.seed}, config {Path(args.config_file).name} {' '.join(args.overrides)}"
             f" ({model.fit_report['epochs_run']} epochs, best {model.fit_report['best_epoch']})"), "",
             "| spacing | seconds | R@20 | MRR@20 |", "|---|---|---|---|"]
    lines += [f"| {r['gap']} | {r['gap_seconds']:.1f} | {r['recall@20']:.4f} | {r['mrr@20']:.4f} |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"gap-check-{args.dataset}-seed{args.seed}"
    (args.out / f"{stem}.md").write_text(text)
    (args.out / f"{stem}.json").write_text(json.dumps({"rows": rows, "fit": {k: v for k, v in model.fit_report.items()
                                                                            if k != "resolved"}}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
