"""Start, await and stop the signals server as a child process: for tests, benchmarks, the demo and
`signals serve`.

`bentoml serve` is an arbiter that starts worker processes in sessions of their own; `stop_server`
signals the arbiter's process group and then makes sure that none of its descendants outlives it,
ending them by process id and nothing else.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import httpx
import psutil

SERVICE = "serving.service:SessionSignals"
SERVER_ENV = {
    "BENTOML_DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PYTHONUNBUFFERED": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # a bar per download is noise in a server's log
    # glibc hands every freed block over 128 KB back to the OS and page-faults it in again on the next
    # request; scores over a 50,000-product catalogue are 200 KB per shopper. Keeping such blocks in the
    # heap made the catalogue scoring 2.5x faster at batch 32 (benchmarks/SERVING.md).
    "MALLOC_MMAP_THRESHOLD_": str(64 * 1024 * 1024),
    "MALLOC_TRIM_THRESHOLD_": str(256 * 1024 * 1024),
}
"""Defaults for the server's environment; the caller's environment and overrides win."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env_overrides: Mapping[str, str] | None = None, host: str = "127.0.0.1",
                 log_file: Path | None = None) -> subprocess.Popen:
    """`bentoml serve` on host:port with the environment plus `env_overrides` (e.g. SIGNALS_BUNDLE);
    output goes to `log_file` if given, else to this process's stdout/stderr."""
    env = {**SERVER_ENV, **os.environ, **(env_overrides or {})}
    command = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port)]
    output: IO[bytes] | None = open(log_file, "ab") if log_file is not None else None
    try:
        return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT if output else None,
                                start_new_session=True)
    finally:
        if output is not None:
            output.close()  # the child holds its own descriptor


def wait_until_ready(base_url: str, timeout_s: float = 90.0, proc: subprocess.Popen | None = None) -> None:
    """Poll /readyz until 200; raises TimeoutError, or RuntimeError at once if `proc` has exited."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {proc.returncode} before it was ready")
            try:
                if client.get(f"{base_url}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet, or still loading the model
            time.sleep(0.2)
    raise TimeoutError(f"{base_url} was not ready within {timeout_s:.0f} s")


def stop_server(proc: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """SIGTERM to the server (it stops its workers), SIGKILL to whatever is left after `timeout_s`."""
    try:
        workers = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        workers = []
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:  # the arbiter's group has ended already
        proc.wait()
    _, left = psutil.wait_procs(workers, timeout=timeout_s)
    for worker in left:
        worker.kill()
