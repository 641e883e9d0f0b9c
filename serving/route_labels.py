"""One Prometheus label for every path the server does not serve.

BentoML's metrics middleware labels each request with its raw path, so every random path a client tries
became a new time series (3,000 random GETs grew /metrics from 0.06 to 13.5 MB). Paths outside the served
set are renamed `UNKNOWN_ROUTE` before any middleware sees them: they still get 404, the metrics count them
under one label, and the 404's log line names the path the client asked for (`scope["requested_path"]`).
"""
from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any

UNKNOWN_ROUTE = "/(unknown)"
SYSTEM_ROUTES = ("/", "/docs.json", "/schema.json", "/livez", "/healthz", "/readyz", "/metrics")
"""What BentoML serves besides the API (its _bentoml_impl/server/app.py)."""

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def served_paths(api_routes: Iterable[str]) -> frozenset[str]:
    """The API routes, BentoML's system routes and the files of its browsable UI (/static_content/...)."""
    from bentoml._internal import server

    static = Path(server.__file__).parent / "static_content"
    assets = {f"/static_content/{p.name}" for p in static.iterdir() if p.is_file()} if static.is_dir() else set()
    return frozenset({*SYSTEM_ROUTES, *api_routes, *assets})


@functools.cache  # one wrapper per application, not one per connection
def with_one_label_for_unknown_routes(app: ASGIApp, paths: frozenset[str]) -> ASGIApp:
    if not paths:
        return app

    async def labelled(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] not in paths:
            scope = {**scope, "path": UNKNOWN_ROUTE, "raw_path": UNKNOWN_ROUTE.encode(),
                     "requested_path": scope["path"]}
        await app(scope, receive, send)
    return labelled
