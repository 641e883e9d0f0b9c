"""What a person sees: a line per trial, a table of the best trials, and the study's plots and best
parameters on the MLflow parent run."""
from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import optuna
from mlflow import MlflowClient
from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger(__name__)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == 0 or (1e-3 <= abs(value) < 1e4):
            return f"{value:.4g}"
        return f"{value:.3g}"
    return str(value)


def fmt_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={fmt(v)}" for k, v in params.items())


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials, best first (multi-objective: the Pareto front, ordered on the first metric)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    if len(study.directions) > 1:
        front = {t.number for t in study.best_trials}
        complete = [t for t in complete if t.number in front]
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return sorted(complete, key=lambda t: (sign * t.values[0], t.number))


def progress_line(trial: FrozenTrial, study: optuna.Study, metrics: list[str], finished: int, target: int) -> str:
    """`[ 3/20] trial 4  COMPLETE  val_score=0.4123  best 0.4123 (#4)  12.3s  model.encoder=gru ...`"""
    seconds = trial.duration.total_seconds() if trial.duration else float("nan")
    head = f"[{finished:>{len(str(target))}}/{target}] trial {trial.number:<3} {trial.state.name:<8}"
    if trial.state == TrialState.COMPLETE:
        result = "  ".join(f"{m}={fmt(v)}" for m, v in zip(metrics, trial.values))
    elif trial.state == TrialState.PRUNED and trial.intermediate_values:
        epoch = max(trial.intermediate_values)
        result = f"at epoch {epoch} ({metrics[0]}={fmt(trial.intermediate_values[epoch])})"
    elif trial.state == TrialState.FAIL:
        result = f"error: {str(trial.user_attrs.get('error', '?'))[:200]}"
    else:
        result = ""
    best = best_trials(study)
    best_text = ""
    if best and len(study.directions) == 1:
        best_text = f"best {fmt(best[0].value)} (#{best[0].number})"
    elif best:
        best_text = f"Pareto front {len(best)} trials"
    return f"{head}  {result}  {best_text}  {seconds:.1f}s  {fmt_params(trial.params)}"


def best_table(study: optuna.Study, metrics: list[str], top: int) -> str:
    rows = best_trials(study)[:top]
    if not rows:
        return "no complete trial yet"
    names = list(dict.fromkeys(k for t in rows for k in t.params))
    header = ["rank", "trial", *metrics, "epochs", "seconds", *names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, t in enumerate(rows, 1):
        seconds = t.duration.total_seconds() if t.duration else float("nan")
        cells = [str(rank), str(t.number), *(fmt(v) for v in t.values), str(t.user_attrs.get("epochs", len(t.intermediate_values) or "-")),
                 f"{seconds:.1f}", *(fmt(t.params.get(n, "")) for n in names)]
        lines.append("| " + " | ".join(cells) + " |")
    states = {s.name: 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    for t in study.get_trials(deepcopy=False):
        if t.state.name in states:
            states[t.state.name] += 1
    title = "best trials" if len(study.directions) == 1 else "Pareto-optimal trials"
    summary = ", ".join(f"{n} {k.lower()}" for k, n in states.items())
    return f"{title} of study {study.study_name} ({summary}):\n" + "\n".join(lines)


def log_study(client: MlflowClient, run_id: str, study: optuna.Study, metrics: list[str], table: str,
              finished: int) -> None:
    """Best parameters (tags best.* + best_params.json), best value(s), trials.csv and plots on the parent run."""
    best = best_trials(study)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if best:
            top = best[0]
            tags = {f"best.{k}": fmt(v) for k, v in top.params.items()}
            tags["best.trial"] = str(top.number)
            for key, value in tags.items():
                client.set_tag(run_id, key, value)
            names = ["best_value"] if len(metrics) == 1 else [f"best_{m}" for m in metrics]
            for name, value in zip(names, top.values):
                client.log_metric(run_id, name, value, step=finished)
            (out / "best_params.json").write_text(json.dumps(
                {"trial": top.number, "values": dict(zip(metrics, top.values)), "params": top.params}, indent=2))
        (out / "best_trials.md").write_text(table + "\n")
        study.trials_dataframe().to_csv(out / "trials.csv", index=False)
        plots = out / "plots"
        plots.mkdir()
        for name, error in save_plots(study, metrics, plots).items():
            log.info("plot %s skipped: %s", name, error)
        client.log_artifacts(run_id, str(out))


def save_plots(study: optuna.Study, metrics: list[str], folder: Path) -> dict[str, str]:
    """Optuna's matplotlib plots as PNGs; returns the plots that could not be drawn and why."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    jobs: dict[str, Any] = {}
    if len(metrics) == 1:
        jobs["optimization_history"] = lambda: ovm.plot_optimization_history(study, target_name=metrics[0])
        jobs["param_importances"] = lambda: ovm.plot_param_importances(study, target_name=metrics[0])
        jobs["parallel_coordinate"] = lambda: ovm.plot_parallel_coordinate(study, target_name=metrics[0])
        if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
            jobs["intermediate_values"] = lambda: ovm.plot_intermediate_values(study)
    else:
        for i, m in enumerate(metrics):
            def target(t: FrozenTrial, i: int = i) -> float:
                return t.values[i]
            jobs[f"optimization_history_{m}"] = lambda target=target, m=m: ovm.plot_optimization_history(
                study, target=target, target_name=m)
            jobs[f"param_importances_{m}"] = lambda target=target, m=m: ovm.plot_param_importances(
                study, target=target, target_name=m)
            jobs[f"parallel_coordinate_{m}"] = lambda target=target, m=m: ovm.plot_parallel_coordinate(
                study, target=target, target_name=m)
        if len(metrics) in (2, 3):
            jobs["pareto_front"] = lambda: ovm.plot_pareto_front(study, target_names=metrics)
    skipped = {}
    for name, draw in jobs.items():
        if not complete:
            skipped[name] = "no complete trial"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = draw()
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            figure.set_size_inches(max(figure.get_size_inches()[0], 8), max(figure.get_size_inches()[1], 5))
            figure.tight_layout()
            figure.savefig(folder / f"{name}.png", dpi=110)
        except Exception as err:  # noqa: BLE001 - e.g. importances need 2+ complete trials with varied params
            skipped[name] = f"{type(err).__name__}: {err}"
        finally:
            plt.close("all")
    return skipped
