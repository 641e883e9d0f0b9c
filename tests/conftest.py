"""Shared fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).parents[1]
SHARED_DATASETS = REPO_ROOT / ".." / "shared" / "datasets"


@pytest.fixture
def shared_datasets() -> Path:
    """The real datasets beside the repository (../shared/datasets); the test skips where they are absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATASETS.resolve()} (they live outside the repository)")
    return SHARED_DATASETS
