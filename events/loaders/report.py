"""The load report: what was read, accepted and rejected (and why), as JSON and as a readable summary."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

REPORT_FILE = "load_report.json"


@dataclasses.dataclass
class InputFile:
    path: str
    sha256: str
    rows_read: int


@dataclasses.dataclass
class LoadReport:
    format: str
    inputs: list[InputFile]
    out_dir: str
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    rejected_by_reason: dict[str, int]
    users: int
    sessions: int
    products: int
    event_types: dict[str, int]
    ts_min: str | None
    """ISO 8601, UTC; None when nothing was accepted."""
    ts_max: str | None
    session_gap_minutes: float | None
    """The inactivity gap that cut sessions; None when the source gave session ids."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> LoadReport:
        data = json.loads(Path(path).read_text())
        data["inputs"] = [InputFile(**item) for item in data["inputs"]]
        return cls(**data)

    def summary(self) -> str:
        files = f"{len(self.inputs)} file" + ("s" if len(self.inputs) != 1 else "")
        sessions = (f"{self.sessions:,} (cut at {self.session_gap_minutes:g} min of inactivity)"
                    if self.session_gap_minutes is not None else f"{self.sessions:,}")
        lines = [
            f"{self.format}: {self.rows_read:,} rows read from {files} -> "
            f"{self.rows_accepted:,} accepted, {self.rows_rejected:,} rejected",
            f"  users        {self.users:,}",
            f"  sessions     {sessions}",
            f"  products     {self.products:,}",
            f"  time (UTC)   {self.ts_min or '-'} .. {self.ts_max or '-'}",
            "  event types  " + (_counts(self.event_types) or "none"),
            "  rejected     " + (_counts(self.rejected_by_reason) or "none"),
            f"  wrote        {self.out_dir}/{{events,rejected}}.parquet and {REPORT_FILE}",
        ]
        return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
