"""One experiment's readout: the assignment log and the canonical events in, the table per arm and the
sample-ratio check out (`signals experiment report`; the notebook 03-experiment-readout shows it)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from events.errors import UserFacingError
from events.exposures import read_configurations, read_exposures
from experiments.outcomes import JoinCounts, choose_experiment, per_user_outcomes
from experiments.statistics import SampleRatio, arm_table, sample_ratio

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Readout:
    experiment: str
    control: str
    window_days: float
    table: pd.DataFrame
    """One row per arm: users, shares, conversion, revenue per user, differences to the control (statistics.py)."""
    sample_ratio: SampleRatio
    counts: JoinCounts
    truncated_lines: int
    shares_changed: bool
    """The experiment ran with more than one split; the shares of the latest are the expected ones."""

    def markdown(self) -> str:
        return markdown(self)


def read_out(log_dir: str | Path, events: pd.DataFrame, window_days: float, experiment: str | None = None) -> Readout:
    read = read_exposures(log_dir)
    name = choose_experiment(read.exposures, experiment)
    history = read_configurations(log_dir, name)
    if not history:
        raise UserFacingError(f"{log_dir}: no manifest experiment-{name}.json (the server writes it at startup); "
                              "it holds the arms' shares the sample-ratio check needs")
    latest = history[-1]
    shares = {arm["name"]: float(arm["share"]) for arm in latest["arms"]}
    shares_changed = len({tuple((a["name"], a["share"]) for a in h["arms"]) for h in history}) > 1
    if shares_changed:
        log.warning("experiment %s ran with %d different splits; the expected shares are the latest (%s)", name,
                    len(history), ", ".join(f"{a} {s:.2%}" for a, s in shares.items()))
    exposures = read.exposures[read.exposures["experiment"] == name]
    unknown = sorted(set(exposures["arm"]) - set(shares))
    if unknown:
        raise UserFacingError(f"{log_dir}: arm(s) {', '.join(unknown)} logged but not in the latest configuration of {name}")
    users, counts = per_user_outcomes(exposures, events, pd.Timedelta(days=window_days))
    if users.empty:
        raise UserFacingError(f"no exposed shopper of {name} has a whole {window_days:g}-day window inside the events "
                              f"({events['ts'].min()} .. {events['ts'].max()}); {counts}")
    table = arm_table(users, latest["control"], shares)
    return Readout(name, latest["control"], window_days, table, sample_ratio(table["users"], shares), counts,
                   read.truncated_lines, shares_changed)


def markdown(readout: Readout) -> str:
    t, c = readout.table, readout.counts
    lines = [f"experiment **{readout.experiment}**: purchases within {readout.window_days:g} days of a shopper's first "
             f"exposure; control **{readout.control}**; 95% intervals",
             "",
             "| arm | shoppers | share (expected) | conversion [95% CI] | vs control [95% CI] | p "
             "| revenue / shopper [95% CI] | vs control [95% CI] | p |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for arm, r in t.iterrows():
        control = arm == readout.control
        lines.append(
            f"| {arm} | {int(r['users']):,} | {r['realised_share']:.2%} ({r['expected_share']:.2%}) | "
            f"{r['conversion']:.2%} [{r['conversion_ci_low']:.2%}, {r['conversion_ci_high']:.2%}] | "
            + ("control | | " if control else
               f"{r['conversion_diff']:+.2%} [{r['conversion_diff_ci_low']:+.2%}, {r['conversion_diff_ci_high']:+.2%}] | "
               f"{r['conversion_p_value']:.3g} | ")
            + f"{r['revenue_per_user']:.2f} [{r['revenue_per_user_ci_low']:.2f}, {r['revenue_per_user_ci_high']:.2f}] | "
            + ("control | |" if control else
               f"{r['revenue_per_user_diff']:+.2f} [{r['revenue_per_user_diff_ci_low']:+.2f}, "
               f"{r['revenue_per_user_diff_ci_high']:+.2f}] | {r['revenue_per_user_p_value']:.3g} |"))
    srm = readout.sample_ratio
    lines += ["", f"sample ratio: chi-square {srm.chi2:.2f}, p = {srm.p_value:.3g}"
              + (" -> **MISMATCH**: the split is not the configured one; do not trust the comparison"
                 if srm.mismatch else " (no mismatch)"),
              f"read: {c.exposures:,} exposures of {c.users:,} shoppers; left out: {c.in_several_arms:,} shoppers in "
              "several "
              f"arms, {c.incomplete_window:,} without a whole window in the events; {readout.truncated_lines} cut-off "
              f"last line(s) skipped; {c.purchases_without_price:,} purchases without a price (revenue 0)"]
    if readout.shares_changed:
        lines.append("the split changed during the experiment: expected shares are the latest configuration's")
    return "\n".join(lines)
