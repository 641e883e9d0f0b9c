"""Loaders: raw shop event files -> the canonical event table, with every rejected row kept and counted.

Public API (imported lazily, so that `signals --help` does not pay for pyarrow and pandas):

- `load_events(format, inputs, out_dir, **options) -> LoadReport` writes `events.parquet`,
  `rejected.parquet` and `load_report.json` into `out_dir`.
- `read_events(dir_or_file) -> pandas.DataFrame` reads a canonical `events.parquet`.
- `FORMAT_NAMES`: the formats `load_events` knows.
"""
from __future__ import annotations

from typing import Any

from events.loaders.registry import FORMAT_NAMES

__all__ = ["FORMAT_NAMES", "LoadReport", "load_events", "read_events", "write_events"]

_LAZY = {
    "load_events": "events.loaders.pipeline",
    "read_events": "events.loaders.events_io",
    "write_events": "events.loaders.events_io",
    "LoadReport": "events.loaders.report",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
