"""Options of one load: the keyword arguments of `load_events` and the flags of `signals load`."""
from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time
from pathlib import Path

from events.errors import UserFacingError
from events.schema import SESSION_GAP_MINUTES

DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024
"""Source bytes judged per chunk: large enough for fast vectorised work, small enough that memory stays low
(16 MiB measured as fast as 32 MiB, with less memory; see benchmarks/LOADER.md)."""


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    session_gap_minutes: float = SESSION_GAP_MINUTES
    """Inactivity that ends a session, for sources without session ids (a gap of exactly this starts a new one)."""
    mapping: Path | None = None
    """YAML column mapping; required by the `csv` and `parquet` formats."""
    keep_extra_types: bool = False
    """Keep source event types that are neither core types nor mapped (otherwise: rejected as unknown)."""
    event_types: dict[str, str] = dataclasses.field(default_factory=dict)
    """Source event type -> canonical type; added to (and overriding) the format's own mapping."""
    ts_min: datetime | date | str | None = None
    """Earliest accepted time (inclusive); None = the format's documented start, if it has one."""
    ts_max: datetime | date | str | None = None
    """End of accepted times (exclusive); None = the format's documented end, if it has one."""
    chunk_bytes: int = DEFAULT_CHUNK_BYTES

    def __post_init__(self) -> None:
        if not self.session_gap_minutes > 0:
            raise UserFacingError(f"session gap must be positive, got {self.session_gap_minutes} minutes")
        if self.chunk_bytes < 1024:
            raise UserFacingError(f"chunk_bytes must be at least 1024, got {self.chunk_bytes}")
        object.__setattr__(self, "ts_min", parse_instant(self.ts_min, "ts_min"))
        object.__setattr__(self, "ts_max", parse_instant(self.ts_max, "ts_max"))
        if self.ts_min is not None and self.ts_max is not None and self.ts_min >= self.ts_max:
            raise UserFacingError(f"ts_min {self.ts_min.isoformat()} is not before ts_max {self.ts_max.isoformat()}: "
                                  "every row would be rejected")
        if self.mapping is not None:
            object.__setattr__(self, "mapping", Path(self.mapping))


def parse_instant(value: datetime | date | str | None, name: str) -> datetime | None:
    """An ISO 8601 date or datetime as an aware datetime; values without an offset are UTC."""
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if not isinstance(value, (str, date)):
        raise UserFacingError(f"{name}: expected an ISO 8601 date or datetime, got {value!r}")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise UserFacingError(f"{name}: {value!r} is not an ISO 8601 date or datetime "
                                  "(e.g. 2017-11-25 or 2017-11-25T00:00:00+08:00)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
