"""The simulated shop the flavours are measured on (sim_complementary, sim_similar, sim_people_like_you): one
simulation with complementary products, its last --test-days days held out, and a model trained by the
project's own `training.train` on the days before, cached in --work so that the scripts share one training.

The simulator knows what the events only hint at: the complement truth (complements.parquet) and every
shopper's latent categories and brands (oracle_tastes.parquet, events/simulator/).
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from events.schema import CANONICAL_SCHEMA, EVENTS_FILE
from events.simulator import load_simulator_config, simulate

log = logging.getLogger(__name__)

BATCH = 256
MAIN_SHARE = 0.3
"""complements.main_share of the benchmark shop: a third of the products have accessories."""


@dataclass
class Shop:
    folder: Path            # the simulation: events.parquet and the oracles
    train: pd.DataFrame     # events before the cut
    test: pd.DataFrame      # events from the cut on
    cut: pd.Timestamp


def add_shop_arguments(parser: argparse.ArgumentParser, events: int = 300_000) -> None:
    parser.add_argument("--events", type=int, default=events, help=f"simulated events (default {events:,})")
    parser.add_argument("--seed", type=int, default=0, help="simulation and evaluation seed")
    parser.add_argument("--test-days", type=int, default=7, help="the last days, held out (default 7)")
    parser.add_argument("--main-share", type=float, default=MAIN_SHARE,
                        help=f"share of products with accessories (default {MAIN_SHARE}; 0: none)")
    parser.add_argument("--work", type=Path, default=Path("data/generated/flavours"),
                        help="folder for the simulation, the training store and the bundle (reused when present)")
    parser.add_argument("--json", type=Path, help="also write the result here")


def shop(args: argparse.Namespace) -> Shop:
    folder = args.work / f"sim-{args.events}-seed{args.seed}-share{args.main_share:g}"
    if not (folder / "simulation.json").is_file():
        config = load_simulator_config(None, [f"seed={args.seed}", f"complements.main_share={args.main_share}"])
        simulate(config, folder / "sim", target_events=args.events)
        (folder / "simulation.json").write_text((folder / "sim" / "simulation.json").read_text())
    events = pd.read_parquet(folder / "sim" / "events.parquet")
    cut = events["ts"].max().normalize() - pd.Timedelta(days=args.test_days - 1)
    return Shop(folder / "sim", events[events["ts"] < cut].reset_index(drop=True),
                events[events["ts"] >= cut].reset_index(drop=True), cut)


def trained_bundle(args: argparse.Namespace, data: Shop, epochs: int, d_model: int) -> Path:
    """A bundle trained by `training.train` on the shop's events before the cut (its own split: the last 3 days
    validate and test), in a private MLflow store under --work; reused when present."""
    import mlflow

    from events.config_io import load_config
    from registry import download_bundle
    from training.config import TrainRunConfig
    from training.train import train

    root = data.folder.parent / f"model-e{epochs}-d{d_model}"
    bundle = root / "bundle"
    if (bundle / "meta.json").is_file():
        return bundle
    train_dir = root / "train-events"
    train_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(data.train, schema=CANONICAL_SCHEMA, preserve_index=False),
                   train_dir / EVENTS_FILE)
    # The finished-load mark training asks for: the simulation these events were cut from.
    (train_dir / "simulation.json").write_text((data.folder / "simulation.json").read_text())
    result = train(load_config(TrainRunConfig, None, [
        f"data.path={train_dir}", "split.val_days=3", "split.test_days=3", "labels.churn_horizon_days=3",
        "baselines.enabled=false", f"train.max_epochs={epochs}", "train.progress_bar=false",
        f"model.d_model={d_model}", f"tracking.uri=sqlite:///{root.resolve()}/mlflow.db", f"output_dir={root}/runs"]))
    mlflow.set_tracking_uri(result["tracking_uri"])
    path, _ = download_bundle("session-signals", "champion", root / "download")
    path.rename(bundle)
    (root / "train.json").write_text(json.dumps({k: result[k] for k in ("metrics", "model_run_id")}, indent=2,
                                                default=str))
    return bundle


def product_attributes(events: pd.DataFrame) -> pd.DataFrame:
    """product_id -> category, brand as the events record them (null where the shop does not record one)."""
    return events.drop_duplicates("product_id", keep="last").set_index("product_id")[["category", "brand"]]


def served_lists(engine, histories: list[pd.DataFrame], moments: list, name: str, k: int, filters) -> list[list[str]]:
    """Each shopper's `name` list of length k, answered by the endpoint's engine for their events up to the moment."""
    from audiences.timelines import event_rows
    from serving.api_types import ListsRequest, ShopperRequest

    out: list[list[str]] = []
    for first in range(0, len(histories), BATCH):
        batch, at = histories[first:first + BATCH], moments[first:first + BATCH]
        requests = [ShopperRequest.model_construct(events=event_rows(h), user_id=None, as_of=t, k=k, k_categories=1,
                                                   k_brands=1, filters=filters, lists=ListsRequest(**{name: k}))
                    for h, t in zip(batch, at)]
        out += [[item["product_id"] for item in getattr(s.lists, name)] for s in engine.predict(requests, at)]
    return out


def taste_precision(lists: list[list[str]], users: list[str], tastes: pd.DataFrame, attributes: pd.DataFrame,
                    k: int) -> dict[str, np.ndarray]:
    """Per case: share of the k slots holding a product of one of the shopper's latent categories, and of one of
    their favourite brands (oracle_tastes.parquet; empty slots and unrecorded categories or brands count as misses)."""
    category, brand = attributes["category"].to_dict(), attributes["brand"].to_dict()
    in_category, in_brand = np.zeros(len(lists)), np.zeros(len(lists))
    for i, (items, user) in enumerate(zip(lists, users)):
        cats, brands = set(tastes.at[user, "categories"]), set(tastes.at[user, "favourite_brands"])
        in_category[i] = sum(category.get(p) in cats for p in items[:k]) / k
        in_brand[i] = sum(brand.get(p) in brands for p in items[:k]) / k
    return {"latent category": in_category, "favourite brand": in_brand}


def read_tastes(data: Shop) -> pd.DataFrame:
    return pd.read_parquet(data.folder / "oracle_tastes.parquet").set_index("user_id")


def ci_cells(row: dict) -> str:
    return " | ".join(f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in row.values())


def method_rows(result: dict) -> list[str]:
    """One markdown row per method of a list benchmark's result: its intervals, then the share of slots filled."""
    lines = []
    for name, row in result["methods"].items():
        cells = {k: v for k, v in row.items() if k != "filled"}
        lines.append(f"| {name} | {ci_cells(cells)} | {row['filled']:.2f} |")
    return lines


def run_list_benchmark(description: str, cases_help: str, evaluate, markdown) -> None:
    """The command line both list benchmarks share: the shop, a trained bundle, the evaluation, its table."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shop_arguments(parser)
    parser.add_argument("--cases", type=int, default=2000, help=cases_help)
    parser.add_argument("--k", type=int, default=10, help="list length")
    parser.add_argument("--history", type=int, default=100, help="latest events sent with each request")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of the model (default 3)")
    parser.add_argument("--d-model", type=int, default=32, help="model width (default 32)")
    args = parser.parse_args()
    data = shop(args)
    result = evaluate(data, trained_bundle(args, data, args.epochs, args.d_model), args.seed, args.cases, args.k,
                      args.history)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
