"""A readout as an MLflow run of the experiment `session-signals-readouts`: the table (readout.md, and
readout.json for programs), the plot (readout.png), each arm's figures as metrics, the inputs as params."""
from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure  # no pyplot: no backend, no window, nothing to close

from experiments.readout import Readout
from registry import resolve_uri, use_experiment

MLFLOW_EXPERIMENT = "session-signals-readouts"
PLOTTED = (("conversion", "conversion", "{:.1%}"), ("revenue_per_user", "revenue per shopper", "{:.2f}"))


def figure(readout: Readout) -> Figure:
    """Each arm's conversion and revenue per shopper with their 95% intervals; the control in grey."""
    t = readout.table
    fig = Figure(figsize=(5 * len(PLOTTED), 0.6 * len(t) + 1.8))
    axes = fig.subplots(1, len(PLOTTED))
    for ax, (column, title, fmt) in zip(axes, PLOTTED):
        errors = [(t[column] - t[f"{column}_ci_low"]).to_numpy(), (t[f"{column}_ci_high"] - t[column]).to_numpy()]
        colors = ["tab:grey" if arm == readout.control else "tab:blue" for arm in t.index]
        ax.barh(t.index, t[column], xerr=errors, color=colors, capsize=4)
        ax.invert_yaxis()
        ax.set_title(f"{title} (95% CI)")
        for y, value in enumerate(t[column]):
            ax.annotate(fmt.format(value), (0, y), xytext=(3, 0), textcoords="offset points", va="center", color="white")
    fig.suptitle(f"{readout.experiment}: {readout.window_days:g}-day window after first exposure")
    fig.tight_layout()
    return fig


def log_readout(readout: Readout, inputs: dict[str, str], tracking_uri: str = "") -> str:
    """Log `readout` as a new run; returns its id."""
    import mlflow

    use_experiment(resolve_uri(tracking_uri), MLFLOW_EXPERIMENT)
    c = readout.counts
    with mlflow.start_run(run_name=f"readout-{readout.experiment}", tags={"experiment": readout.experiment}) as run:
        mlflow.log_params({**inputs, "experiment": readout.experiment, "control": readout.control,
                           "window_days": readout.window_days})
        metrics = {"srm_chi2": readout.sample_ratio.chi2, "srm_p_value": readout.sample_ratio.p_value,
                   "exposures": c.exposures, "users_in_several_arms": c.in_several_arms,
                   "users_incomplete_window": c.incomplete_window, "truncated_lines": readout.truncated_lines}
        for arm, row in readout.table.iterrows():
            metrics.update({f"{arm}.{k}": float(v) for k, v in row.items()
                            if isinstance(v, (int, float)) and not math.isnan(v)})
        mlflow.log_metrics(metrics)
        mlflow.log_text(readout.markdown(), "readout.md")
        mlflow.log_table(readout.table.reset_index(), "readout.json")
        mlflow.log_figure(figure(readout), "readout.png")
        return run.info.run_id


def default_inputs(log_dir: str | Path, events_dir: str | Path) -> dict[str, str]:
    return {"log": str(Path(log_dir).resolve()), "events": str(Path(events_dir).resolve())}
