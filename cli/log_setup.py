"""Quiet, readable logs for every command: the project's own INFO lines; libraries only at WARNING.

With `-v` everything is shown (DEBUG for the project, INFO for the libraries). Known-harmless library
warnings are filtered here by message, each with why, so a real warning still gets through.
"""
from __future__ import annotations

import logging
import warnings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LIBRARY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "mlflow", "alembic",
                   "bentoml", "httpx", "urllib3", "matplotlib")
HARMLESS_WARNINGS = (
    # mlflow.log_input of our one-row lineage summary: its local path reads as two kinds of source.
    r"The specified dataset source can be interpreted in multiple ways",
    # ... and its schema inference hints that integer counts cannot hold NaN (they never do).
    r"Hint: Inferred schema contains integer column",
    # torch's pytree, called inside Lightning: a deprecation for Lightning to act on, not our users.
    r".*LeafSpec.* is deprecated",
    # A small dataset has fewer batches per epoch than the logging interval: logging happens at epoch end.
    r"The number of training batches .* is smaller than the logging interval",
    # The refit on train + validation (train.refit) has no validation by design.
    r"You defined a `validation_step` but have no `val_dataloader`",
    # Lightning suggests DataLoader workers; windows are gathered in the main process on purpose (README).
    r"The '.*_dataloader' does not have many workers",
)


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=FORMAT, datefmt="%H:%M:%S",
                        force=True)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        # Lightning gives its loggers a handler of their own when imported first: every line twice.
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(logging.INFO if verbose else logging.WARNING)
    if not verbose:
        for message in HARMLESS_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
