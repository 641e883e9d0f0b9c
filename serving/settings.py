"""What the server reads from its environment, in one place (the README's table mirrors this)."""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MODEL_NAME = "session-signals"
DEFAULT_ALIAS = "champion"
DEFAULT_SEGMENTS_CONFIG = Path(__file__).with_name("segments.yaml")


@dataclass(frozen=True)
class ServingSettings:
    bundle: Path | None
    """SIGNALS_BUNDLE: serve this bundle folder instead of a registered model."""
    bundle_identity: dict | None
    """SIGNALS_BUNDLE_IDENTITY: JSON {name, version, run_id} of that bundle when it is a registered version that
    `signals serve` resolved and fetched once at startup (so every worker serves the same version)."""
    model_name: str
    """SIGNALS_MODEL_NAME: registered model to serve (default session-signals)."""
    model_alias: str
    """SIGNALS_MODEL_ALIAS: its alias (default champion)."""
    tracking_uri: str
    """MLFLOW_TRACKING_URI: the registry ("" = the project's default store)."""
    segments_config: Path
    """SIGNALS_SEGMENTS_CONFIG: YAML with the segment thresholds (default serving/segments.yaml)."""
    segment_overrides: tuple[str, ...]
    """SIGNALS_SEGMENT_OVERRIDES: space-separated key=value, e.g. "dormant.idle_days=45"."""
    max_batch_size: int
    """SIGNALS_MAX_BATCH_SIZE: most shoppers scored in one forward pass (1 = no batching)."""
    max_queue: int
    """SIGNALS_MAX_QUEUE: shoppers waiting beyond this get 503 at once: the bound on queueing delay."""
    torch_threads: int
    """SIGNALS_TORCH_THREADS: intra-op threads of the forward pass."""
    trends: Path | None
    """SIGNALS_TRENDS: the trends table (`signals trends --out DIR`: DIR or DIR/trends.parquet) that the `trending`
    list reads; a newer table written there is picked up within a second, without a restart."""
    workers: int
    """SIGNALS_WORKERS: server processes, each with its own copy of the model (default 2: one per core of
    the 2-core target; one process is bound by its GIL at about 400 requests/s, benchmarks/SERVING.md)."""
    max_wait_s: float
    """SIGNALS_MAX_WAIT_S: an API request whose expected wait (requests in flight x the measured busy time per
    answer, serving/admission.py) exceeds this gets 503 at once (default 1): bounds admitted latency under overload."""
    max_header_bytes: int
    """SIGNALS_MAX_HEADER_BYTES: request line plus headers (default 16384); a longer head gets 431 and the
    connection closes."""
    header_timeout_s: float
    """SIGNALS_HEADER_TIMEOUT_S: a connection whose request head is not complete this long after it opened (or
    after the request's first byte, on a kept-alive connection) is closed (default 10)."""
    body_timeout_s: float
    """SIGNALS_BODY_TIMEOUT_S: a request whose body has not fully arrived this long after its head is closed
    (default 60)."""
    api_token: str | None = field(repr=False)
    """SIGNALS_API_TOKEN: when set, every route but /livez, /healthz and /readyz needs
    `Authorization: Bearer <token>` (serving/auth.py). Never printed: kept out of repr."""
    experiment: str | None = None
    """SIGNALS_EXPERIMENT: JSON of a pinned experiment (serving/experiment.py: PinnedExperiment), set by
    `signals serve --experiment`; every worker then serves each arm's bundle and logs assignments."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "ServingSettings":
        bundle = env.get("SIGNALS_BUNDLE", "")
        return cls(
            bundle=Path(bundle) if bundle else None,
            bundle_identity=json.loads(env["SIGNALS_BUNDLE_IDENTITY"]) if env.get("SIGNALS_BUNDLE_IDENTITY") else None,
            model_name=env.get("SIGNALS_MODEL_NAME", "") or DEFAULT_MODEL_NAME,
            model_alias=env.get("SIGNALS_MODEL_ALIAS", "") or DEFAULT_ALIAS,
            tracking_uri=env.get("MLFLOW_TRACKING_URI", ""),
            segments_config=Path(env.get("SIGNALS_SEGMENTS_CONFIG", "") or DEFAULT_SEGMENTS_CONFIG),
            segment_overrides=tuple(env.get("SIGNALS_SEGMENT_OVERRIDES", "").split()),
            max_batch_size=int(env.get("SIGNALS_MAX_BATCH_SIZE", "") or 64),
            max_queue=int(env.get("SIGNALS_MAX_QUEUE", "") or 512),
            torch_threads=int(env.get("SIGNALS_TORCH_THREADS", "") or 1),
            trends=Path(env["SIGNALS_TRENDS"]) if env.get("SIGNALS_TRENDS") else None,
            workers=int(env.get("SIGNALS_WORKERS", "") or 2),
            max_wait_s=float(env.get("SIGNALS_MAX_WAIT_S", "") or 1.0),
            max_header_bytes=int(env.get("SIGNALS_MAX_HEADER_BYTES", "") or 16 * 1024),
            header_timeout_s=float(env.get("SIGNALS_HEADER_TIMEOUT_S", "") or 10.0),
            body_timeout_s=float(env.get("SIGNALS_BODY_TIMEOUT_S", "") or 60.0),
            api_token=env.get("SIGNALS_API_TOKEN", "") or None,
            experiment=env.get("SIGNALS_EXPERIMENT", "") or None,
        )
