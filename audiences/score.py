"""`signals score`'s driver: every customer of a canonical table scored as of a moment, into the
customers file and the audience files, atomically, with an MLflow run that traces them.

Three passes over the user partitions keep memory flat (about one partition of events plus one row of
numbers per customer): (1) score each partition into a part file (`scoring.workers` processes at once); (2) RFM quintiles over every customer,
and the seeds' representations; (3) each part gets its RFM segment and best-sellers and is appended to
customers.parquet and to the audience files, while the lookalike search streams past it.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from audiences.config import AudienceConfig
from audiences.definitions import LOOKALIKES, audiences, is_seed
from models.uplift import bundle_has_uplift
from audiences.event_table import EventTable
from audiences.files import (
    CUSTOMER_SCHEMA,
    CUSTOMERS_FILE,
    LOOKALIKE_SCHEMA,
    REPORT_FILE,
    TableFile,
    atomic_folder,
    audience_file,
)
from audiences.lists import list_fields
from audiences.lookalikes import NearestToSeeds
from audiences.partition_scoring import EngineSource, score_partitions
from audiences.rfm import rfm_scores
from events.config_io import to_dict
from serving.api_types import ModelIdentity

log = logging.getLogger(__name__)


@dataclass
class ScoreJob:
    table: EventTable
    as_of: pd.Timestamp
    bundle: Path
    identity: ModelIdentity
    engine_rules: object  # serving.segments.SegmentRules of the endpoint: the `segments` column's labels
    thresholds: AudienceConfig
    out: Path
    lists: dict[str, int] = field(default_factory=dict)
    """Lists by purpose in customers.parquet, name -> length (audiences/lists.py); none by default."""
    trends: Path | None = None
    """The trends table of the `trending` list (`signals trends --out`), as the server's SIGNALS_TRENDS."""


def score(job: ScoreJob, run_id: str | None = None) -> dict:
    """Write job.out; returns the report (also written there as report.json, last)."""
    started = time.perf_counter()
    cfg = job.thresholds
    with atomic_folder(job.out) as folder:
        work = folder / ".work"
        work.mkdir()
        parts, without, purchases = _score_parts(job, work)
        rfm = _rfm(parts)
        seeds = _seeds(parts, rfm, cfg)
        best_sellers = _best_sellers(purchases, cfg.best_sellers.n)
        sizes, scored, live = _write_outputs(folder, parts, rfm, seeds, best_sellers, job)
        shutil.rmtree(work)
        seconds = time.perf_counter() - started
        report = {
            "as_of": job.as_of.isoformat(), "output": str(job.out.resolve()), "scoring_run_id": run_id,
            "input": {"path": str(job.table.file.resolve()), "name": job.table.file.parent.name,
                      "sha256": job.table.sha256, "rows": job.table.rows, "ts_min": job.table.ts_min.isoformat(),
                      "ts_max": job.table.ts_max.isoformat()},
            "model": job.identity.model_dump(),
            "customers_scored": scored, "customers_without_events_before_as_of": without, "live_sessions": live,
            "audiences": sizes, "empty_audiences": [name for name, n in sizes.items() if n == 0],
            "thresholds": to_dict(cfg), "lists": job.lists, "trends": str(job.trends) if job.trends else None,
            "seconds": round(seconds, 2),
            "customers_per_second": round(scored / max(seconds, 1e-9), 1),
            "peak_rss_mb": round(_peak_rss_mb(), 1), "workers": cfg.scoring.workers,
            "peak_worker_rss_mb": round(_peak_rss_mb(children=True), 1) if cfg.scoring.workers > 1 else None,
        }
        (folder / REPORT_FILE).write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def _score_parts(job: ScoreJob, work: Path) -> tuple[list[Path], int, pd.DataFrame]:
    cfg = job.thresholds
    files = job.table.partition_files(cfg.scoring.events_per_partition, work, at_least=cfg.scoring.workers)
    parts = [work / f"customers-{k:05d}.parquet" for k in range(len(files))]
    source = EngineSource(job.bundle, job.identity, job.engine_rules, job.trends)
    without, purchases, tick = 0, [], time.perf_counter()
    for k, scored in enumerate(score_partitions(files, parts, job.as_of, cfg, source, job.lists)):
        without += scored.without_events
        purchases.append(scored.purchases)
        log.info("partition %d/%d: %d customers scored (%.1f s since the last)", k + 1, len(files), scored.customers,
                 time.perf_counter() - tick)
        tick = time.perf_counter()
    return parts, without, pd.concat(purchases, ignore_index=True)


def _rfm(parts: list[Path]) -> pd.DataFrame:
    """RFM scores of every customer with a purchase, indexed by user_id (a row of numbers per customer)."""
    columns = ["user_id", "days_since_last_purchase", "orders", "spend"]
    values = pd.concat([pd.read_parquet(p, columns=columns) for p in parts], ignore_index=True)
    buyers = values[values["orders"] > 0].set_index("user_id")
    return rfm_scores(buyers["days_since_last_purchase"], buyers["orders"], buyers["spend"])


def _seeds(parts: list[Path], rfm: pd.DataFrame, cfg: AudienceConfig) -> NearestToSeeds:
    ids, vectors = [], []
    for part in parts:
        c = pd.read_parquet(part, columns=["user_id", "orders", "representation"]).join(rfm[["rfm_segment"]], on="user_id")
        c = c[is_seed(c, cfg)]
        ids.append(c["user_id"].to_numpy(dtype=object))
        vectors += list(c["representation"])
    stacked = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 1), dtype=np.float32)
    ids = np.concatenate(ids) if ids else np.zeros(0, dtype=object)
    return NearestToSeeds(ids, stacked, cfg.lookalikes.size)


def _best_sellers(purchases: pd.DataFrame, n: int) -> pd.Series:
    """category -> its n most purchased products of the window (ties by product id)."""
    totals = purchases.groupby(["category", "product_id"])["purchases"].sum().reset_index()
    totals = totals.sort_values(["category", "purchases", "product_id"], ascending=[True, False, True], kind="stable")
    return totals.groupby("category")["product_id"].agg(lambda p: list(p[:n]))


def _write_outputs(folder: Path, parts: list[Path], rfm: pd.DataFrame, seeds: NearestToSeeds,
                   best_sellers: pd.Series, job: ScoreJob) -> tuple[dict[str, int], int, int]:
    defined = audiences(job.thresholds, bundle_has_uplift(job.bundle))
    schema = pa.schema(list(CUSTOMER_SCHEMA) + list_fields(job.lists))
    customers = TableFile(folder / CUSTOMERS_FILE, schema)
    files = {a.name: audience_file(folder, a.name, a.fields) for a in defined}
    seed_set = set(seeds.seed_ids)
    scored = live = 0
    try:
        for part in parts:
            c = pd.read_parquet(part).join(rfm, on="user_id")
            c["as_of"] = job.as_of
            high_intent = c["rule_segments"].map(lambda s: "high_intent" in s)
            c["category_best_sellers"] = [best_sellers.get(cat) if hi and cat is not None else None
                                          for hi, cat in zip(high_intent, c["browsing_category"])]
            members = {a.name: a.members(c) for a in defined}
            c["audiences"] = [[name for name in members if members[name][i]] for i in range(len(c))]
            customers.append(c)
            for a in defined:
                files[a.name].append(c[members[a.name]])
            candidates = ~c["user_id"].isin(seed_set).to_numpy()
            if candidates.any():
                seeds.add(c["user_id"].to_numpy(dtype=object)[candidates], np.stack(c["representation"][candidates]))
            scored += len(c)
            live += int(c["session_live"].sum())
    finally:
        customers.close()
        for f in files.values():
            f.close()
    lookalikes = audience_file(folder, LOOKALIKES.name, LOOKALIKES.fields, LOOKALIKE_SCHEMA)
    lookalikes.append(seeds.result())
    lookalikes.close()
    sizes = {name: f.rows for name, f in files.items()} | {LOOKALIKES.name: lookalikes.rows}
    return sizes, scored, live


def _peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory of this process, or of its largest finished worker (ru_maxrss: kB on Linux)."""
    import resource

    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024 if psutil.LINUX else float("nan")


def read_customers(folder: Path) -> pd.DataFrame:
    return pq.read_table(Path(folder) / CUSTOMERS_FILE).to_pandas()
