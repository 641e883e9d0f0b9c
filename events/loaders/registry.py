"""The formats `signals load --format` knows: name -> module that opens it (imported only when used)."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from events.errors import UserFacingError

if TYPE_CHECKING:
    from events.loaders.formats.base import Source
    from events.loaders.options import LoadOptions

_FORMAT_MODULES = {
    "rees46": "events.loaders.formats.rees46",
    "taobao": "events.loaders.formats.taobao",
    "yoochoose": "events.loaders.formats.yoochoose",
    "diginetica": "events.loaders.formats.diginetica",
    "online-retail": "events.loaders.formats.online_retail",
    "csv": "events.loaders.formats.mapped",
    "parquet": "events.loaders.formats.mapped",
}
FORMAT_NAMES = tuple(_FORMAT_MODULES)


def open_source(format_name: str, paths: list[Path], options: LoadOptions) -> Source:
    """Check the input files of `format_name` (columns, layout) and return a Source ready to stream."""
    if format_name not in _FORMAT_MODULES:
        raise UserFacingError(f"unknown format {format_name!r}; known: {', '.join(FORMAT_NAMES)}")
    if not paths:
        raise UserFacingError(f"format {format_name}: give at least one input file")
    module = importlib.import_module(_FORMAT_MODULES[format_name])
    return module.open_source(format_name, paths, options)
