"""The assignment log, written off the request path: requests hand their exposure lines to a bounded buffer
in memory (`offer` never waits on disk), and one background thread per worker appends them to JSON-lines
files (format: events/exposures.py), rotated by size and age, one file at a time per process.

Durability: every write is flushed to the operating system at once, so a SIGKILL loses only what sits in
the buffer at that moment (at most `queue_size` exposures; in practice the few milliseconds since the
writer's last pass) and at most the last line, cut off (the reader skips and counts it). Files are fsynced
every `fsync_seconds`, at rotation and at shutdown: a machine crash loses at most that much. `close` (the
service's shutdown hook) writes everything accepted before it returns. A full buffer (the disk far behind)
drops new exposures and counts them (`dropped`); a failing write is retried every second, and while it
fails `problem()` says why (the service's /readyz answers 503 with it).
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from events.exposures import log_file_name

log = logging.getLogger(__name__)
RETRY_S = 1.0


def check_log_dir(folder: Path, min_free_mb: float) -> None:
    """Create `folder` if needed and prove a file can be written and synced there; raises OSError with the
    reason (not a folder, not writable, disk full, less than `min_free_mb` free)."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".write-probe-{socket.gethostname()}-{os.getpid()}"
    try:
        with open(probe, "wb") as f:
            f.write(b"probe\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise OSError(err.errno, f"{folder}: cannot write there ({err.strerror})") from None
    finally:
        probe.unlink(missing_ok=True)
    problem = free_space_problem(folder, min_free_mb)
    if problem:
        raise OSError(problem)


def free_space_problem(folder: Path, min_free_mb: float) -> str | None:
    try:
        free_mb = shutil.disk_usage(folder).free / 2**20
    except OSError as err:
        return f"{folder}: {err.strerror}"
    if free_mb < min_free_mb:
        return f"{folder}: only {free_mb:.0f} MB free, below the {min_free_mb:g} MB required"
    return None


class AssignmentLog:
    def __init__(self, folder: Path, experiment: str, *, max_file_mb: float, max_file_minutes: float,
                 queue_size: int, fsync_seconds: float, min_free_mb: float):
        check_log_dir(folder, min_free_mb)
        self.folder = folder
        self.experiment = experiment
        self.max_file_bytes = int(max_file_mb * 2**20)
        self.max_file_seconds = max_file_minutes * 60
        self.queue_size = queue_size
        self.fsync_seconds = fsync_seconds
        self.min_free_mb = min_free_mb
        self.dropped = 0
        self.written = 0
        self.files = 0
        self.write_error: str | None = None
        self._pending: list[str] = []
        self._in_flight = 0
        self._closing = False
        self._wake = threading.Condition()
        self._file: BinaryIO | None = None
        self._opened_at = 0.0
        self._synced_at = 0.0
        self._thread = threading.Thread(target=self._run, name="assignment-log", daemon=True)
        self._thread.start()

    def offer(self, lines: list[str]) -> int:
        """Queue exposure lines for writing; returns how many were dropped because the buffer is full."""
        with self._wake:
            room = 0 if self._closing else self.queue_size - len(self._pending) - self._in_flight
            accepted = lines[:max(room, 0)]
            self._pending.extend(accepted)
            dropped = len(lines) - len(accepted)
            self.dropped += dropped
            self._wake.notify()
        return dropped

    def problem(self) -> str | None:
        """Why the log cannot be trusted right now (for /readyz), or None."""
        if not self._thread.is_alive() and not self._closing:
            return "assignment log: its writer thread has stopped"
        if self.write_error:
            return f"assignment log: {self.write_error}"
        space = free_space_problem(self.folder, self.min_free_mb)
        return f"assignment log: {space}" if space else None

    def close(self, timeout_s: float = 30.0) -> int:
        """Write everything accepted, fsync and close; returns the exposures left unwritten (0 unless the disk
        failed for `timeout_s`). Later offers are dropped and counted."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout_s)
        with self._wake:
            left = len(self._pending)
        log.info("assignment log closed: %d exposures in %d file(s) under %s, %d dropped, %d unwritten",
                 self.written, self.files, self.folder, self.dropped, left)
        return left

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._pending and not self._closing:
                    self._wake.wait(timeout=min(1.0, self.fsync_seconds))
                lines, self._pending = self._pending, []
                self._in_flight = len(lines)  # still counts against the bound until written
                closing = self._closing
            written = not lines or self._write(lines)
            with self._wake:
                self._in_flight = 0
                if not written:
                    self._pending[:0] = lines  # first again, in order
            if not written:
                time.sleep(RETRY_S)  # at shutdown too: close() waits for the disk up to its timeout
                continue
            self._maintain(closing)
            if closing:
                with self._wake:
                    if not self._pending:
                        return

    def _write(self, lines: list[str]) -> bool:
        data = "".join(lines).encode()
        try:
            if self._file is None:
                self._open()
            start = self._file.tell()
            try:
                self._file.write(data)
                self._file.flush()
            except OSError:
                self._file.truncate(start)  # no half batch: the retry writes it whole
                raise
        except OSError as err:
            if self.write_error is None:
                log.error("assignment log: cannot write under %s (%s); retrying every %.0f s",
                          self.folder, err.strerror or err, RETRY_S)
            self.write_error = f"cannot write under {self.folder} ({err.strerror or err})"
            self._close_file()
            return False
        if self.write_error is not None:
            log.warning("assignment log: writing again under %s", self.folder)
            self.write_error = None
        self.written += len(lines)
        return True

    def _open(self) -> None:
        name = log_file_name(self.experiment, datetime.now(UTC), socket.gethostname(), os.getpid())
        self._file = open(self.folder / name, "ab")
        self._opened_at = self._synced_at = time.monotonic()
        self.files += 1

    def _maintain(self, closing: bool) -> None:
        """Rotate a file that is too large or too old, fsync on schedule, close at shutdown."""
        if self._file is None:
            return
        now = time.monotonic()
        if closing or self._file.tell() >= self.max_file_bytes or now - self._opened_at >= self.max_file_seconds:
            self._close_file()
        elif now - self._synced_at >= self.fsync_seconds:
            try:
                os.fsync(self._file.fileno())
            except OSError as err:
                self.write_error = f"cannot sync under {self.folder} ({err.strerror or err})"
            self._synced_at = now

    def _close_file(self) -> None:
        if self._file is None:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as err:
            self.write_error = f"cannot close a file under {self.folder} ({err.strerror or err})"
        self._file = None
