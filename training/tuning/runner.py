"""`tune(cfg)`: one worker of a study. Any number of workers (processes or machines) can run it on the
same storage and study name; each stops when the study holds `tune.trials` finished trials.

Trial accounting: finished = COMPLETE + PRUNED. Before each trial a worker fails trials whose worker
died (stale heartbeat; they are re-queued with the same parameters), counts the study's trials, and
  - stops when finished >= trials;
  - waits (polling) when the running trials of other workers would reach the target, rather than
    starting a surplus trial; if one of them dies it is re-queued and picked up here;
  - otherwise asks Optuna for the next trial (a re-queued one first).
Two workers checking at the very same moment can still both start the last trial: the study then ends
with one extra finished trial, never with a lost or duplicated one (trial numbers come from the database).
"""
from __future__ import annotations

import logging
import time
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from events.config_io import loggable, redacted, to_dict
from events.errors import UserFacingError
from training.tuning.config import TuneRunConfig, apply_params, default_study_name
from training.tuning.objective import Objective
from training.tuning.report import best_table, best_trials, fmt, fmt_params, log_study, progress_line
from training.tuning.storage import (FINISHED, StaleTrialHandler, count_states, fail_stale_trials, make_storage,
                                     open_study, redact, resolve_storage_url)
from training.tuning.trials import StudyTracker

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = 3
RETRAINED_ATTR = "retrained"


def tune(cfg: TuneRunConfig, verbose: bool = False) -> dict[str, Any]:
    """Run trials until the study holds cfg.tune.trials finished ones, report, retrain the best config."""
    cfg.check()
    section = cfg.tune
    metrics = section.metrics()
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    url = resolve_storage_url(section.storage)
    name = section.study or default_study_name(cfg)
    handler = StaleTrialHandler(section.max_retry)
    storage = make_storage(url, section, handler)
    study, created = open_study(storage, name, section)
    params = {k: v for k, v in loggable(cfg).items()
              if not k.startswith(("tune.search_space", "tune.enqueue", "tune.trials", "tune.timeout",
                                   "tune.storage", "tune.retrain"))}
    tracker = StudyTracker(cfg.tracking, study, created, redact(url), params,
                           yaml.safe_dump(redacted(to_dict(cfg)), sort_keys=False))
    handler.on_stale = tracker.on_stale
    if created:
        for point in section.enqueue:
            study.enqueue_trial(point, skip_if_exists=True)

    states = count_states(study)
    done = sum(states[s] for s in FINISHED)
    print(f"study {name} in {redact(url)}: {'created' if created else 'resumed'} with {done} of "
          f"{section.trials} finished trials; {len(section.search_space)} parameters, "
          f"{' / '.join(f'{d} {m}' for m, d in zip(metrics, section.directions()))}; "
          f"MLflow parent run {tracker.parent_run_id}", flush=True)

    objective = Objective(cfg, tracker, verbose)
    ran = run_trials(study, objective, tracker, cfg, handler.requeue)

    states = count_states(study)
    finished = sum(states[s] for s in FINISHED)
    complete = finished >= section.trials
    table = best_table(study, metrics, section.top)
    print(table, flush=True)
    log_study(tracker.client, tracker.parent_run_id, study, metrics, table, finished)
    retrained = None
    if not complete:
        print(f"study {name} holds {finished} of {section.trials} finished trials (timeout?); run the same "
              f"command again, or `signals tune --study {name} --storage ...`, to continue it", flush=True)
    elif section.retrain:
        retrained = retrain(cfg, study, tracker, metrics)
    if complete:
        tracker.finish()
    best = best_trials(study)
    if best:
        print(f"best trial #{best[0].number}: "
              f"{'  '.join(f'{m}={fmt(v)}' for m, v in zip(metrics, best[0].values))}  {fmt_params(best[0].params)}")
    print(f"this worker ran trials: {', '.join(map(str, ran)) or 'none'}")
    print(f"MLflow:  mlflow ui --backend-store-uri {tracker.uri}   (study run {tracker.parent_run_id})")
    print(f"Optuna:  optuna-dashboard {redact(url)}")
    return {"study_name": name, "storage": redact(url), "created": created, "ran": ran,
            "finished": finished, "states": {s.name: n for s, n in states.items()},
            "best_trial": best[0].number if best else None, "best_values": list(best[0].values) if best else None,
            "best_params": dict(best[0].params) if best else None, "parent_run_id": tracker.parent_run_id,
            "tracking_uri": tracker.uri, "retrain": retrained}


def run_trials(study: optuna.Study, objective: Objective, tracker: StudyTracker, cfg: TuneRunConfig,
               requeue) -> list[int]:
    """This worker's loop (see the module docstring); returns the numbers of the trials it ran.
    `requeue(study, frozen_trial)` puts a copy of an interrupted trial back in the queue."""
    section, metrics = cfg.tune, cfg.tune.metrics()
    ran: list[int] = []
    failures = [0]
    started = time.monotonic()
    poll = min(float(section.heartbeat_interval), 5.0)

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        ran.append(trial.number)
        tracker.end_trial(trial, metrics)
        finished = sum(count_states(study)[s] for s in FINISHED)
        tracker.log_progress(finished)
        print(progress_line(trial, study, metrics, finished, section.trials), flush=True)
        failures[0] = failures[0] + 1 if trial.state == TrialState.FAIL else 0

    waiting_said = False
    while True:
        fail_stale_trials(study)
        states = count_states(study)
        finished = sum(states[s] for s in FINISHED)
        if finished >= section.trials:
            break
        if section.timeout is not None and time.monotonic() - started >= section.timeout:
            print(f"timeout: {section.timeout:g}s reached; no new trial started", flush=True)
            break
        if failures[0] >= MAX_CONSECUTIVE_FAILURES:
            trial = study.get_trials(deepcopy=False)[ran[-1]] if ran else None
            error = trial.user_attrs.get("error", "see the log above") if trial else "see the log above"
            raise UserFacingError(f"{MAX_CONSECUTIVE_FAILURES} trials in a row failed; last error: {error}")
        if states[TrialState.WAITING] == 0 and finished + states[TrialState.RUNNING] >= section.trials:
            if not waiting_said:
                print(f"waiting for {states[TrialState.RUNNING]} trial(s) running on other workers", flush=True)
                waiting_said = True
            time.sleep(poll)
            continue
        waiting_said = False
        try:
            study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[after_trial], gc_after_trial=True)
        except (KeyboardInterrupt, SystemExit) as stop:  # Ctrl-C; SIGTERM reaches here as Lightning's SystemExit
            interrupted(study, objective, tracker, requeue, metrics, stop)
            raise
    return ran


def interrupted(study: optuna.Study, objective: Objective, tracker: StudyTracker, requeue, metrics: list[str],
                stop: BaseException) -> None:
    """Fail the interrupted trial now (not after the grace period), re-queue it and close its MLflow runs."""
    trial = objective.current
    if trial is None:
        return
    frozen = next((t for t in study.get_trials(deepcopy=False) if t.number == trial.number), None)
    if frozen is None or frozen.state not in (TrialState.RUNNING, TrialState.FAIL):
        return
    if frozen.state == TrialState.RUNNING:  # SystemExit passes Optuna by: it left the trial RUNNING
        frozen = study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    requeue(study, frozen)
    tracker.end_trial(frozen, metrics, error=f"interrupted ({type(stop).__name__}); re-queued")
    print(f"trial {trial.number} interrupted: marked failed and re-queued for the next run", flush=True)


def retrain(cfg: TuneRunConfig, study: optuna.Study, tracker: StudyTracker, metrics: list[str]) -> dict | None:
    """Train the best trial's config with baselines under the study run, register it (challenger), and
    let tracking.register apply the champion rule. Done once per best trial, whoever finishes the study."""
    from training.train import train

    best = best_trials(study)
    if not best:
        print("no complete trial: nothing to retrain", flush=True)
        return None
    top = best[0]
    previous = study.user_attrs.get(RETRAINED_ATTR)
    if previous and previous.get("trial") == top.number:
        print(f"best trial #{top.number} was already retrained (run {previous['run_id']}); not again", flush=True)
        return previous
    print(f"retraining best trial #{top.number} with baselines: {fmt_params(top.params)}", flush=True)
    best_cfg = apply_params(cfg.base(), top.params)
    result = train(best_cfg, parent_run_id=tracker.parent_run_id)
    reg = result["registration"]
    info = {"trial": top.number, "run_id": result["parent_run_id"], "model_run_id": result["model_run_id"],
            "best_val": result["best_val"], "registration": reg, "test_metrics": result["metrics"].get("model")}
    study.set_user_attr(RETRAINED_ATTR, {k: v for k, v in info.items() if k != "test_metrics"})
    tracker.client.set_tag(tracker.parent_run_id, "retrain_run_id", result["parent_run_id"])
    tracker.client.set_tag(tracker.parent_run_id, "retrain_trial", str(top.number))
    if reg:
        tracker.client.set_tag(tracker.parent_run_id, "registered_version", str(reg["version"]))
        tracker.client.set_tag(tracker.parent_run_id, "registered_champion", str(reg["champion"]))
        print(f"registered {reg['model_name']} v{reg['version']} "
              f"({'champion' if reg['champion'] else 'challenger'}): {reg['reason']}", flush=True)
    return info
