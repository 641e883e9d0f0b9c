"""A small fuzz run against the real server on every `make test` (the big one: benchmarks/serving/fuzz.py):
malformed HTTP over raw sockets, slow clients and schemathesis cases; no 5xx, and the server still serves."""
from __future__ import annotations

import pytest

from benchmarks.serving.fuzz import fuzz
from serving.process import free_port, start_server, stop_server, wait_until_ready
from tests.test_serving_lifecycle import bundle  # noqa: F401  (the tiny bundle fixture)

pytestmark = pytest.mark.e2e


def test_a_small_fuzz_run_finds_no_server_error(bundle, tmp_path) -> None:  # noqa: F811
    port = free_port()
    proc = start_server(port, {"SIGNALS_BUNDLE": str(bundle), "SIGNALS_WORKERS": "1", "BENTOML_HOME": str(tmp_path / "b"),
                               "SIGNALS_API_TOKEN": "t0k3n", "SIGNALS_HEADER_TIMEOUT_S": "1",
                               "SIGNALS_BODY_TIMEOUT_S": "1"}, log_file=tmp_path / "server.log")
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", timeout_s=120, proc=proc)
        result = fuzz(port, "t0k3n", raw_cases=300, schema_examples=10, seed=1, slow=5)
    finally:
        stop_server(proc)
    assert not result["server_errors"], "\n".join(result["server_errors"][:5])
    assert result["alive"] and result["raw_cases"] >= 300 and result["schemathesis_cases"] >= 30, result
    assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")
