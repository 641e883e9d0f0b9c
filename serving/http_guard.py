"""ASGI middleware in front of the service: who may call (serving/auth.py), what bodies it takes, how big,
and answers that name what was wrong, each logged in one line.

In order: a request without the bearer token (when SIGNALS_API_TOKEN is set) gets 401 before anything of it
is read; a body that is not JSON gets 415 naming its content type (BentoML would otherwise parse forms and
multipart, and some of those ended in 500); a body over the size limit gets 413; an API request that would
wait longer than SIGNALS_MAX_WAIT_S gets 503 with Retry-After (serving/admission.py), before its body is read.

BentoML turns a pydantic ValidationError into 400 `{"error": "2 validation errors for ...", "detail":
[{"loc": [...], "msg": ...}]}`; the guard rewrites `error` to `events[3].ts: Input should be a valid
datetime; k: ...` so that a person reading a log sees which field is wrong. `detail` is kept as it is.
Every 4xx and 503 is logged as one line (status, method, path, error); serving/error_log.py keeps BentoML
from logging them again with a traceback. Only error responses are buffered; others pass through untouched.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from serving.admission import AdmissionGate
from serving.auth import BearerToken

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
"""About 80,000 events: a full /predict_batch of shoppers with their latest events fits easily, and
parsing the largest body accepted takes well under a second."""
BODY_METHODS = ("POST", "PUT", "PATCH")
LOGGED_MESSAGE_CHARS = 300


class RequestGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES, api_token: str | None = None,
                 max_wait_s: float = math.inf, api_routes: frozenset[str] = frozenset()):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.auth = BearerToken(api_token) if api_token else None
        self.gate = AdmissionGate(max_wait_s)
        self.api_routes = api_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _Answer(send, scope)
        headers = dict(scope["headers"])
        refusal = ((self.auth.refusal(scope.get("path", ""), headers) if self.auth else None)
                   or _not_json(scope["method"], headers))
        if refusal is not None:
            await _send_json(send, *refusal)
            return
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _send_json(send, 413, {"error": f"body: larger than {self.max_body_bytes} bytes"})
            return
        if length is None and scope["method"] in BODY_METHODS:
            body = await _read_at_most(receive, self.max_body_bytes)  # chunked: count as it arrives
            if body is None:
                await _send_json(send, 413, {"error": f"body: larger than {self.max_body_bytes} bytes"})
                return
            receive = _replay(body, receive)
        if scope.get("path") not in self.api_routes:
            await self.app(scope, receive, send)
            return
        if not self.gate.admit():
            retry = self.gate.retry_after_s()
            await _send_json(send, 503, overloaded_body(
                f"{self.gate.in_flight} requests in flight, about {self.gate.expected_wait_s():.1f} s of work", retry),
                [(b"retry-after", str(retry).encode())])
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.done()


def overloaded_body(reason: str, retry_after_s: int) -> dict[str, Any]:
    return {"error": f"overloaded: {reason}; retry after {retry_after_s} s", "retry_after_s": retry_after_s}


def _not_json(method: str, headers: Mapping[bytes, bytes]) -> tuple[int, dict[str, str]] | None:
    """415 for a body declared as anything but JSON in UTF-8; no Content-Type at all is read as JSON."""
    declared = headers.get(b"content-type")
    if method not in BODY_METHODS or declared is None:
        return None
    media_type, *parameters = (part.strip().lower() for part in declared.split(b";"))
    charsets = [p.partition(b"=")[2].strip(b'"') for p in parameters if p.startswith(b"charset=")]
    if media_type == b"application/json" and all(c in (b"utf-8", b"utf8") for c in charsets):
        return None
    shown = declared.decode("latin-1").encode("unicode_escape").decode()[:100]
    return 415, {"error": f"content-type: {shown!r} is not supported; send application/json (UTF-8)"}


class _Answer:
    """A `send` that holds back an error response until its body is complete, names the fields of a 400,
    and logs each 4xx and 503 in one line."""

    def __init__(self, send: Send, scope: Scope):
        self.send = send
        self.scope = scope
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400:
            self.start = message
            return
        if self.start is None or message["type"] != "http.response.body":
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self.chunks)
        status = self.start["status"]
        if status == 400:
            body = _name_fields(body)
            headers = [(k, v) for k, v in self.start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            self.start = {**self.start, "headers": headers}
        if status < 500 or status == 503:  # other 5xx: BentoML logs them with their traceback
            _log_refusal(self.scope, status, body)
        await self.send(self.start)
        await self.send({"type": "http.response.body", "body": body})


def _log_refusal(scope: Scope, status: int, body: bytes) -> None:
    try:
        payload = json.loads(body)
        error = payload["error"] if isinstance(payload, dict) and isinstance(payload.get("error"), str) else body.decode()
    except (ValueError, UnicodeDecodeError):
        error = body.decode("utf-8", "replace")
    path = scope.get("requested_path", scope.get("path", ""))
    log.warning("%d %s %s: %s", status, scope.get("method", ""), _printable(path, 200),
                _printable(error, LOGGED_MESSAGE_CHARS))


def _printable(text: str, limit: int) -> str:
    """One line whatever a client sent: control characters escaped, length capped."""
    text = text if text.isprintable() else text.encode("unicode_escape").decode()
    return text if len(text) <= limit else text[:limit] + "..."


def _name_fields(body: bytes) -> bytes:
    try:
        payload = json.loads(body)
    except ValueError:
        return body
    if not isinstance(payload, dict) or not isinstance(payload.get("detail"), list):
        return body
    messages = [f"{field_path(item.get('loc', ()))}: {item.get('msg', '')}"
                for item in payload["detail"] if isinstance(item, dict)]
    if messages:
        payload["error"] = "; ".join(messages)
    return json.dumps(payload).encode()


def field_path(loc: list[Any] | tuple[Any, ...]) -> str:
    """("events", 3, "ts") -> "events[3].ts"; an empty location is the body itself (e.g. invalid JSON)."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the client's own messages (a disconnect, when it comes)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}
    return replayed


async def _send_json(send: Send, status: int, payload: dict[str, Any],
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
