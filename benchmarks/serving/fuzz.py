"""Fuzz the real server: schemathesis against its OpenAPI schema, plus a corpus of malformed HTTP over raw sockets.
Passes when no case gets a 5xx and the server still answers a good request at the end.

    python -m benchmarks.serving.fuzz                       # 3,000 raw cases + 2 x 2 x 250 schemathesis cases
    python -m benchmarks.serving.fuzz --raw 300 --schema-examples 10 --bundle DIR

The raw corpus (seeded): bad request lines and methods, HTTP/0.9 and HTTP/2 prefaces, oversized and malformed
headers, bad or conflicting Content-Length, bad chunked encoding, bodies that are not JSON (forms, multipart,
binary), deep nesting, huge numbers, invalid UTF-8, wrong types, booleans for numbers, random bytes; each case
on its own connection, read until the server closes it. A few slow clients (a byte at a time) run alongside.
tests/test_serving_fuzz.py runs a small version on every `make test`.
"""
from __future__ import annotations

import argparse
import json
import random
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

EVENT = {"ts": "2026-02-01T10:00:00Z", "event_type": "view", "product_id": "p1", "price": 9.5}
GOOD = json.dumps({"events": [EVENT]}).encode()


def _request(method: bytes, path: bytes, headers: list[bytes], body: bytes = b"", length: bool = True) -> bytes:
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: fuzz", b"Connection: close", *headers]
    if length:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _json_bodies(rng: random.Random) -> list[bytes]:
    depth = rng.choice([100, 1000, 100_000])
    digits = rng.choice([20, 400, 4299, 4301, 10_000])
    number = ("9" * digits).encode()
    return [
        b"[" * depth + b"]" * depth,
        b'{"events": ' + b"[" * depth + b"]" * depth + b"}",
        b'{"events": [], "k": ' + number + b"}",
        b'{"events": [{"ts": ' + number + b', "event_type": "view", "product_id": "p"}]}',
        b'{"events": [{"ts": "2026-01-01T00:00:00Z", "event_type": "view", "product_id": ' + number + b"}]}",
        b'{"events": [{"ts": "2026-01-01T00:00:00Z", "event_type": "view", "product_id": "p", "price": 1e' + number[:4] + b"}]}",
        b'{"events": [], "k": true, "filters": {"exclude_purchased": 1, "min_price": false}}',
        b'{"events": [{"ts": "2026-01-01T00:00:00Z", "event_type": "\xff\xfe", "product_id": "\xc3\x28"}]}',
        b'{"events": [], "user_id": "\xed\xa0\x80"}',  # a lone surrogate in UTF-8
        b'{"events": [], "user_id": "\\ud800"}',
        b'{"events": [{"ts": "2026-01-01T00:00:00Z", "event_type": "view", "product_id": "p", "nul": "\x00"}]}',
        b'{"shoppers": [' + b",".join([b'{"events": []}'] * rng.choice([1, 256, 257, 5000])) + b"]}",
        b'{"events": [], "as_of": "' + b"9" * rng.choice([5, 40, 400]) + b'-01-01"}',
        b'{"events": null}', b"null", b"[]", b'"x"', b"{", b"", b"\x00" * 64,
        bytes(rng.getrandbits(8) for _ in range(rng.choice([1, 100, 5000]))),
    ]


def raw_case(rng: random.Random) -> bytes:
    """One malformed (or oddly formed) HTTP request."""
    path = rng.choice([b"/predict", b"/predict_batch", b"/livez", b"/metrics", b"/", b"/docs.json", b"/nope"])
    kind = rng.randrange(12)
    json_type = [b"Content-Type: application/json"]
    if kind == 0:  # bad request lines
        return rng.choice([
            b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", b"G\xffT / HTTP/1.1\r\n\r\n", b"GET / \r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"GET /\r\n", b"\r\n\r\n\r\n", b"GET " + b"/a" * 20_000 + b" HTTP/1.1\r\n\r\n",
            rng.choice([b"DELETE", b"PUT", b"OPTIONS", b"TRACE", b"CONNECT", b"FOOBAR"]) + b" " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n"])
    if kind == 1:  # oversized or malformed headers
        size = rng.choice([100, 8000, 17_000, 70_000, 1_000_000])
        return rng.choice([
            _request(b"GET", path, [b"X-Big: " + b"a" * size]),
            _request(b"GET", path, [b"X-%d: v" % i for i in range(size // 10)]),
            _request(b"GET", path, [b"Bad Header: v", b": empty", b"X-\x01: \x7f"]),
            _request(b"GET", path, [b"X: a\r\n b"]),  # obsolete line folding
            _request(b"POST", path, json_type + [b"Authorization: Bearer " + b"x" * size], GOOD)])
    if kind == 2:  # bad Content-Length
        value = rng.choice([b"-1", b"abc", b"1e3", b"99999999999999999999", b"10, 20", b" 5", b"0x10", b""])
        return _request(b"POST", path, json_type + [b"Content-Length: " + value], GOOD, length=False)
    if kind == 3:  # conflicting lengths, smuggling shapes
        return _request(b"POST", path, json_type + [b"Content-Length: 5", b"Transfer-Encoding: chunked"],
                        b"0\r\n\r\n", length=False) if rng.random() < 0.5 else _request(
            b"POST", path, json_type + [b"Content-Length: 2", b"Content-Length: 10"], GOOD, length=False)
    if kind == 4:  # bad chunked encoding
        chunked = json_type + [b"Transfer-Encoding: chunked"]
        body = rng.choice([b"zz\r\n{}\r\n0\r\n\r\n", b"5\r\n{}\r\n0\r\n\r\n", b"2\r\n{}", b"-1\r\n\r\n",
                           b"ffffffffffffffff\r\n{}\r\n0\r\n\r\n", b"2;ext=" + b"e" * 20_000 + b"\r\n{}\r\n0\r\n\r\n",
                           b"%x\r\n" % len(GOOD) + GOOD + b"\r\n0\r\n\r\n"])
        return _request(b"POST", path, chunked, body, length=False)
    if kind == 5:  # bodies that are not JSON
        content_type, body = rng.choice([
            (b"application/x-www-form-urlencoded", b"events=1&k=" + b"9" * 5000),
            (b"multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"events\"; "
                                                 b"filename=\"x\"\r\n\r\n\x00\xff" * 3 + b"\r\n--b--\r\n"),
            (b"multipart/form-data", b"no boundary"), (b"text/plain", GOOD), (b"application/xml", b"<a/>"),
            (b"application/vnd.bentoml+pickle", b"\x80\x04\x95."), (b"application/octet-stream", b"\x00" * 100),
            (b"application/json; charset=utf-16", GOOD), (b"\xff\xfe", GOOD), (b"", GOOD)])
        return _request(b"POST", path, [b"Content-Type: " + content_type], body)
    if kind == 6:  # a body shorter than announced is covered by the body deadline; here: longer than announced
        return _request(b"POST", path, json_type + [b"Content-Length: 3"], GOOD + b"GET / HTTP/1.1\r\n\r\n", length=False)
    if kind == 7:  # pipelined requests, some broken
        return _request(b"POST", b"/predict", json_type + [b"Connection: keep-alive"], GOOD) + b"GARBAGE\r\n\r\n"
    # JSON bodies with odd values: deep nesting, huge numbers, invalid UTF-8, booleans for numbers, random bytes
    body = rng.choice(_json_bodies(rng))
    return _request(b"POST", rng.choice([b"/predict", b"/predict_batch"]), json_type, body)


def send_raw(port: int, payload: bytes, timeout_s: float = 15.0) -> bytes:
    """Send one case on a fresh connection and read until the server closes it (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        try:
            sock.sendall(payload)  # no half-close: uvicorn ends a connection at EOF, answer or not
        except OSError:
            pass  # the server closed early: read what it answered
        chunks: list[bytes] = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks)


def statuses(answer: bytes) -> list[int]:
    """Status codes of every response in `answer` (pipelined cases get several)."""
    found = []
    for part in answer.split(b"HTTP/1.1 ")[1:]:
        code = part[:3]
        if code.isdigit():
            found.append(int(code))
    return found


def slow_clients(port: int, n: int, stop: threading.Event) -> None:
    """Slowloris alongside the corpus: clients that send a head a byte every 0.2 s."""
    def one() -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                for byte in b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000:
                    if stop.is_set():
                        return
                    sock.sendall(bytes([byte]))
                    time.sleep(0.2)
        except OSError:
            pass  # closed by the server: what should happen
    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for thread in threads:
        thread.start()


def schemathesis_cases(url: str, headers: dict[str, str], examples: int, record: Callable[[str, int, str], None]) -> None:
    """Generated requests, valid and invalid, for every POST operation of the served schema."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode

    def caller(path: str, strategy):
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=strategy)
        def call(case) -> None:
            response = case.call(base_url=url, headers=headers)
            record(f"schemathesis {path}", response.status_code, json.dumps(case.body, default=repr)[:300])
        return call

    schema = schemathesis.openapi.from_dict(httpx.get(f"{url}/docs.json", headers=headers, timeout=30).json())
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() == "POST":
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                caller(operation.path, operation.as_strategy(generation_mode=mode))()


def fuzz(port: int, token: str | None, raw_cases: int, schema_examples: int, seed: int = 0,
         slow: int = 10) -> dict:
    """Run everything against the server on `port`; returns counts, the 5xx found and whether it still serves."""
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    counts = {"raw": 0, "schemathesis": 0}
    server_errors: list[str] = []
    started = time.monotonic()

    def record(kind: str, status: int, case: str) -> None:
        counts["schemathesis" if kind.startswith("schemathesis") else "raw"] += 1
        if status >= 500:
            server_errors.append(f"{kind} -> {status}: {case}")

    stop = threading.Event()
    slow_clients(port, slow, stop)
    rng = random.Random(seed)
    payloads = [raw_case(rng) for _ in range(raw_cases)]
    if token:  # most cases past the token check, so that they reach the parsers
        line = f"Authorization: Bearer {token}\r\n".encode()
        payloads = [p.replace(b"\r\n", b"\r\n" + line, 1) if rng.random() < 0.8 else p for p in payloads]
    # Concurrent: cases that never complete wait for the server's deadlines.
    with ThreadPoolExecutor(8) as pool:
        for payload, answer in zip(payloads, pool.map(lambda p: send_raw(port, p), payloads)):
            for status in statuses(answer) or [0]:
                record("raw", status, repr(payload[:200]))
    schemathesis_cases(url, headers, schema_examples, record)
    stop.set()
    alive = httpx.post(f"{url}/predict", content=GOOD, headers={**headers, "content-type": "application/json"},
                       timeout=30).status_code == 200
    return {"raw_cases": counts["raw"], "schemathesis_cases": counts["schemathesis"],
            "server_errors": server_errors, "alive": alive, "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: a generated 2,000-product bundle)")
    parser.add_argument("--raw", type=int, default=3000, help="raw HTTP cases")
    parser.add_argument("--schema-examples", type=int, default=250, help="schemathesis examples per operation and mode")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from serving.process import free_port, start_server, stop_server, wait_until_ready

    token = "fuzz-token"
    with tempfile.TemporaryDirectory(prefix="serving-fuzz-") as tmp:
        bundle = args.bundle
        if bundle is None:
            from benchmarks.serving.realistic_bundle import build
            bundle = build(Path(tmp) / "bundle", n_products=2000)
        port = free_port()
        proc = start_server(port, {"SIGNALS_BUNDLE": str(Path(bundle).resolve()), "BENTOML_HOME": f"{tmp}/bentoml",
                                   "SIGNALS_API_TOKEN": token, "SIGNALS_HEADER_TIMEOUT_S": "2",
                                   "SIGNALS_BODY_TIMEOUT_S": "2"}, log_file=Path(tmp) / "server.log")
        try:
            wait_until_ready(f"http://127.0.0.1:{port}", timeout_s=180, proc=proc)
            result = fuzz(port, token, args.raw, args.schema_examples, args.seed)
        finally:
            stop_server(proc)
            log = (Path(tmp) / "server.log").read_text(errors="replace")
        result["tracebacks_in_log"] = log.count("Traceback")
    print(json.dumps({**result, "server_errors": result["server_errors"][:20]}, indent=2))
    print(f"{result['raw_cases'] + result['schemathesis_cases']} cases ({result['raw_cases']} raw, "
          f"{result['schemathesis_cases']} schemathesis) in {result['seconds']} s: {len(result['server_errors'])} 5xx, "
          f"server {'alive' if result['alive'] else 'DEAD'}, {result['tracebacks_in_log']} tracebacks in its log")


if __name__ == "__main__":
    main()
