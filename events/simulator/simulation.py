"""Runs the whole simulation: the catalogue, then customers in blocks, each block simulated, scored by
the oracles and appended to the output files, so memory stays bounded by the block size."""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from tqdm import tqdm

from events.simulator.block import Block, simulate_block
from events.simulator.catalogue import build_catalogue
from events.simulator.complements import COMPLEMENT_STREAM, COMPLEMENTS_FILE, build_complements
from events.simulator.config import SimulatorConfig, start_datetime, validate
from events.simulator.daily_clock import DailyClock
from events.simulator.summary import Summary
from events.simulator.writer import CatalogueColumns, OutputFiles

log = logging.getLogger(__name__)

CATALOGUE_STREAM = 0
FIRST_BLOCK_GUESS_EVENTS_PER_USER = 60
"""With a target event count, the first block's size assumes this many events per customer; later
blocks use the rate measured so far."""
MIN_BLOCK_USERS = 50


def simulate(config: SimulatorConfig, out_dir: str | Path, target_events: int | None = None,
             progress: bool = False) -> dict[str, Any]:
    """Simulate and write the events, oracles and simulation.json to out_dir; returns the summary.

    With target_events, customers are generated block by block until that many events have come out;
    the last block is cut at the customer whose events reach the target, so the count lands within
    one customer's events of it and config.n_users is ignored (the summary says how many there were).
    """
    validate(config)
    if target_events is not None and target_events < 1:
        raise ValueError("target_events must be at least 1")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    catalogue = build_catalogue(config.catalogue, np.random.default_rng([config.seed, CATALOGUE_STREAM]))
    columns = CatalogueColumns(catalogue)
    (out_dir / COMPLEMENTS_FILE).unlink(missing_ok=True)  # an earlier run's truth would describe other products
    complements = None
    if config.complements.main_share > 0:
        complements = build_complements(catalogue, config.complements,
                                        np.random.default_rng([config.seed, COMPLEMENT_STREAM]))
    clock = DailyClock(config.visits.hourly_profile, config.visits.utc_offset_hours)
    start_us = int(start_datetime(config).timestamp()) * 1_000_000
    summary = Summary(catalogue.n_products)

    # The bar shows only on runs longer than a couple of seconds.
    bar = tqdm(total=target_events or config.n_users, unit=" events" if target_events else " users",
               disable=not progress, unit_scale=True, delay=2.0)
    with OutputFiles(out_dir, config.treatment.enabled) as files, bar:
        index = 0
        while True:
            n_users = _next_block_size(config, summary, target_events)
            if n_users == 0:
                break
            block = simulate_block(index, summary.users, n_users, catalogue, columns, clock, config, start_us,
                                   complements)
            if target_events is not None:
                block = block.head(_users_reaching(block, target_events - summary.events))
            files.append(block.tables)
            before = summary.events if target_events else summary.users
            summary.add(block)
            bar.update((summary.events if target_events else summary.users) - before)
            index += 1
        result = summary.as_dict()
        if complements is not None:
            pq.write_table(complements.table(columns.product_id), out_dir / COMPLEMENTS_FILE)
    settings = dataclasses.asdict(config)
    if not config.treatment.enabled:
        del settings["treatment"]  # simulation.json stays byte for byte what it was before the treatment existed
    if not config.complements.main_share:
        del settings["complements"]  # ... and before the complements
    files.write_summary(settings, result)  # last, after every file is closed: the "finished" mark
    log.info("wrote %d events (%d users, %d sessions) and the oracles to %s in %.1f s",
             result["events"], result["users"], result["sessions"], out_dir, time.perf_counter() - started)
    return result


def _next_block_size(config: SimulatorConfig, summary: Summary, target_events: int | None) -> int:
    if target_events is None:
        return min(config.users_per_block, config.n_users - summary.users)
    remaining = target_events - summary.events
    if remaining <= 0:
        return 0
    per_user = summary.events / summary.users if summary.users else FIRST_BLOCK_GUESS_EVENTS_PER_USER
    # 10% over the estimate so that the target is usually reached in this block.
    wanted = math.ceil(1.1 * remaining / per_user)
    return int(np.clip(wanted, MIN_BLOCK_USERS, config.users_per_block))


def _users_reaching(block: Block, remaining_events: int) -> int:
    """How many of the block's first customers it takes to produce remaining_events (all if too few)."""
    per_user = np.bincount(block.row_user["events"], minlength=block.n_users)
    reached = np.searchsorted(np.cumsum(per_user), remaining_events)
    return int(min(reached + 1, block.n_users))
