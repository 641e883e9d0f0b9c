"""ASGI middleware in front of the service: size limit on bodies, and 400 messages that name the field.

BentoML turns a pydantic ValidationError into 400 `{"error": "2 validation errors for ...", "detail":
[{"loc": [...], "msg": ...}]}`; the guard rewrites `error` to `events[3].ts: Input should be a valid
datetime; k: ...` so that a person reading a log sees which field is wrong. `detail` is kept as it is.
Only 400 responses are buffered; every other response passes through untouched.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 16 * 1024 * 1024
"""About 80,000 events: a full /predict_batch of shoppers with their latest events fits easily, and
parsing the largest body accepted takes well under a second."""


class RequestGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _send_json(send, 413, {"error": f"body: larger than {self.max_body_bytes} bytes"})
            return
        if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
            body = await _read_at_most(receive, self.max_body_bytes)  # chunked: count as it arrives
            if body is None:
                await _send_json(send, 413, {"error": f"body: larger than {self.max_body_bytes} bytes"})
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, _NamingFields(send))


class _NamingFields:
    """A `send` that holds back a 400 response until its body is complete, then rewrites its message."""

    def __init__(self, send: Send):
        self.send = send
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 400:
            self.start = message
            return
        if self.start is None or message["type"] != "http.response.body":
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            body = _name_fields(b"".join(self.chunks))
            headers = [(k, v) for k, v in self.start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await self.send({**self.start, "headers": headers})
            await self.send({"type": "http.response.body", "body": body})


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


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
