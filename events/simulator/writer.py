"""Arrow tables of one block of customers, and the Parquet files they are appended to.

Files in the output folder:
  events.parquet         CANONICAL_SCHEMA, sorted by user_id then ts
  oracle_intent.parquet  session_id, step int32, p_convert float64     (steps before the first purchase)
  oracle_next.parquet    session_id, step int32, top_products list<string>, top_probs list<float64>
                         (every event that has a next event in its session)
  oracle_churn.parquet   user_id, cutoff timestamp[us, UTC], horizon_days int32, p_churn float64
  oracle_tastes.parquet  user_id, categories list<string>, category_weights list<float64>, favourite_brands
                         list<string>, price_sensitivity float64: latent tastes (events/simulator/oracle_tastes.py)
  simulation.json        the config used and a summary
  treatments.parquet     with treatment.enabled only (events/simulator/treatment.py): user_id, session_id, step
                         int32, ts, treated bool: the randomised assignment at every decision point
  oracle_uplift.parquet  ... and session_id, step, p_control, p_treated, uplift float64, do_not_disturb bool, group
  complements.parquet    with complements.main_share > 0 only (events/simulator/complements.py): main_product,
                         accessory_product, strength float64: the accessories shoppers go on to after a main item
All tables follow the events' order (user, then time), so every block is appended as it comes.

The oracles are exact under the simulator's own model and condition on everything the simulator knows
at that point, the customer's latent traits and current regime included: they bound what a model that
sees only the events can reach, rather than being reachable themselves.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from events.schema import CANONICAL_SCHEMA, EVENT_TYPES, EVENTS_FILE
from events.simulator.catalogue import Catalogue
from events.simulator.oracle_tastes import TASTES_FILE, TASTES_SCHEMA
from events.simulator.treatment import TREATMENTS_SCHEMA, UPLIFT_SCHEMA

INTENT_FILE = "oracle_intent.parquet"
NEXT_FILE = "oracle_next.parquet"
CHURN_FILE = "oracle_churn.parquet"
SUMMARY_FILE = "simulation.json"
TREATMENTS_FILE = "treatments.parquet"
UPLIFT_FILE = "oracle_uplift.parquet"

TIMESTAMP = pa.timestamp("us", tz="UTC")
INTENT_SCHEMA = pa.schema([
    pa.field("session_id", pa.string(), nullable=False),
    pa.field("step", pa.int32(), nullable=False),
    pa.field("p_convert", pa.float64(), nullable=False),
])
NEXT_SCHEMA = pa.schema([
    pa.field("session_id", pa.string(), nullable=False),
    pa.field("step", pa.int32(), nullable=False),
    pa.field("top_products", pa.list_(pa.string()), nullable=False),
    pa.field("top_probs", pa.list_(pa.float64()), nullable=False),
])
CHURN_SCHEMA = pa.schema([
    pa.field("user_id", pa.string(), nullable=False),
    pa.field("cutoff", TIMESTAMP, nullable=False),
    pa.field("horizon_days", pa.int32(), nullable=False),
    pa.field("p_churn", pa.float64(), nullable=False),
])
USER_ID_DIGITS = 8   # fixed width, so that string order is numeric order across blocks


def user_ids(first: int, n: int) -> list[str]:
    return [f"u{i:0{USER_ID_DIGITS}d}" for i in range(first, first + n)]


def session_ids(user_ids: list[str], user: np.ndarray, number: np.ndarray) -> pa.Array:
    """'<user_id>-<j>' for a customer's j-th session."""
    return pa.array([f"{user_ids[u]}-{j}" for u, j in zip(user.tolist(), number.tolist())], pa.string())


class CatalogueColumns:
    """The catalogue's product attributes as Arrow arrays, taken per event."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.product_id = pa.array(catalogue.product_ids, pa.string())
        names = np.asarray(catalogue.category_names, dtype=object)[catalogue.product_category]
        self.category = pa.array(np.where(catalogue.category_recorded, names, None), pa.string())
        brands = np.asarray(catalogue.brand_names, dtype=object)[catalogue.product_brand]
        self.brand = pa.array(np.where(catalogue.brand_recorded, brands, None), pa.string())
        self.price = pa.array(catalogue.product_price, pa.float64())
        self.event_type = pa.array(EVENT_TYPES, pa.string())


@dataclass
class BlockTables:
    events: pa.Table
    intent: pa.Table
    next: pa.Table
    churn: pa.Table
    tastes: pa.Table
    treatments: pa.Table | None = None  # only with treatment.enabled
    uplift: pa.Table | None = None


class OutputFiles:
    """The five Parquet writers (seven with the treatment); use as a context manager."""

    def __init__(self, out_dir: Path, treatment: bool = False) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        # An earlier run's summary would mark this run's files finished before they are.
        (out_dir / SUMMARY_FILE).unlink(missing_ok=True)
        self.out_dir = out_dir
        self._writers = {
            "events": pq.ParquetWriter(out_dir / EVENTS_FILE, CANONICAL_SCHEMA),
            "intent": pq.ParquetWriter(out_dir / INTENT_FILE, INTENT_SCHEMA),
            "next": pq.ParquetWriter(out_dir / NEXT_FILE, NEXT_SCHEMA),
            "churn": pq.ParquetWriter(out_dir / CHURN_FILE, CHURN_SCHEMA),
            "tastes": pq.ParquetWriter(out_dir / TASTES_FILE, TASTES_SCHEMA),
        }
        for name in (TREATMENTS_FILE, UPLIFT_FILE):  # an earlier treated run's files would describe other events
            (out_dir / name).unlink(missing_ok=True)
        if treatment:
            self._writers["treatments"] = pq.ParquetWriter(out_dir / TREATMENTS_FILE, TREATMENTS_SCHEMA)
            self._writers["uplift"] = pq.ParquetWriter(out_dir / UPLIFT_FILE, UPLIFT_SCHEMA)

    def append(self, tables: BlockTables) -> None:
        for name, writer in self._writers.items():
            writer.write_table(getattr(tables, name))  # a treatment table exists wherever its writer does

    def write_summary(self, config: dict[str, Any], summary: dict[str, Any]) -> None:
        text = json.dumps({"config": config, "summary": summary}, indent=2)
        (self.out_dir / SUMMARY_FILE).write_text(text + "\n")

    def __enter__(self) -> OutputFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        for writer in self._writers.values():
            writer.close()


def list_column(offsets: np.ndarray, values: pa.Array) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)
