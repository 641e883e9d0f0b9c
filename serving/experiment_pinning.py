"""Before any worker starts: every arm's model resolved to one version and fetched once, and the assignment
log's folder proven writable, so that a bad experiment is one clear error at startup (naming the key) and
every worker, and every restarted one, serves the same versions."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from events.errors import UserFacingError
from serving.assignment_log import check_log_dir
from serving.experiment import ExperimentConfig, PinnedArm, PinnedExperiment
from serving.model_source import pin_registered_model
from serving.settings import ServingSettings


def pin_experiment(config: ExperimentConfig, settings: ServingSettings, dst: Path) -> PinnedExperiment:
    """Each arm's bundle under `dst` (registry arms) or where it lies (bundle arms); raises UserFacingError
    naming `arms[i].alias`, `arms[i].version`, `arms[i].bundle` or `log.dir`."""
    log_dir = Path(config.log.dir).resolve()
    try:
        check_log_dir(log_dir, config.log.min_free_mb)
    except OSError as err:
        raise UserFacingError(f"log.dir: {err}") from None
    if config.model_name:
        settings = dataclasses.replace(settings, model_name=config.model_name)
    arms = tuple(_pin_arm(i, config, settings, dst) for i in range(len(config.arms)))
    return PinnedExperiment(config.name, config.control, arms, dataclasses.replace(config.log, dir=str(log_dir)))


def _pin_arm(i: int, config: ExperimentConfig, settings: ServingSettings, dst: Path) -> PinnedArm:
    from models.bundle import load_bundle

    arm = config.arms[i]
    if arm.holdout:
        return PinnedArm(arm.name, arm.share, None, None)
    if arm.bundle is not None:
        path = Path(arm.bundle).resolve()
        try:
            load_bundle(path)
        except (FileNotFoundError, OSError, ValueError, RuntimeError) as err:
            raise UserFacingError(f"arms[{i}].bundle: {err}") from None
        return PinnedArm(arm.name, arm.share, str(path), {"name": path.name, "version": None, "run_id": None})
    key = "alias" if arm.alias is not None else "version"
    try:
        path, identity = pin_registered_model(dataclasses.replace(settings, model_alias=arm.alias or settings.model_alias),
                                              dst / arm.name, version=arm.version)
    except RuntimeError as err:
        raise UserFacingError(f"arms[{i}].{key}: {err}") from None
    return PinnedArm(arm.name, arm.share, str(path), identity.model_dump())
