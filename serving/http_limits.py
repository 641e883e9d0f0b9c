"""What a client can make a connection hold before the application sees its request: the size of a request's
head (request line + headers) and the time it may take to send the head and the body.

BentoML runs uvicorn with its default `http="auto"` (httptools) and passes no option for this: httptools
(llhttp) buffers a header of any size, and uvicorn times out only idle kept-alive connections, never a head
that stays incomplete. `install()` points uvicorn's "auto" protocol at `LimitedHttpToolsProtocol`, a subclass
that counts and times the head; serving/service.py calls it at import, which a BentoML worker does before it
configures uvicorn. (uvicorn's h11 protocol has a size limit but no timeout either, and was slower:
benchmarks/SERVING.md.)

The protocol also wraps the application with serving/route_labels.py: it is the one place outside BentoML's
metrics middleware, which names a Prometheus label after whatever path it sees.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import httptools
import uvicorn.config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from serving.route_labels import with_one_label_for_unknown_routes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 16 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded request head and deadlines for the head and the body."""

    limits = ConnectionLimits()
    served_paths: frozenset[str] = frozenset()  # set by install(); empty: every path keeps its own label

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = with_one_label_for_unknown_routes(self.app, self.served_paths)
        self._head_bytes: int | None = 0  # bytes received of the current request's head; None once it is complete
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A new connection owes its first head within the timeout: an idle one must not be held forever either.
        self._arm(self.limits.header_timeout_s, "request headers")

    def data_received(self, data: bytes) -> None:
        """uvicorn's, plus the count of an incomplete head, and no 400 after a refusal that stopped the parser."""
        self._unset_keepalive_if_required()
        if self._head_bytes is not None:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if not self.transport.is_closing():  # else a callback refused the request and answered already
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        # A head still incomplete after this chunk is over the limit, whatever else the chunk held (the loop
        # reads at most a few hundred KB at once, so that is all it can hold beyond the limit).
        if self._head_bytes is not None and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(431, f"request headers: larger than {self.limits.max_header_bytes} bytes")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a kept-alive connection's next request: its clock starts at its first byte
            self._arm(self.limits.header_timeout_s, "request headers")

    def on_headers_complete(self) -> None:
        # A head that arrived whole within one chunk is measured here, exactly.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._refuse(431, f"request headers: larger than {self.limits.max_header_bytes} bytes")
            raise _Refused  # stops the parser: nothing of this request reaches the application
        self._head_bytes = None
        self._arm(self.limits.body_timeout_s, "request body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._head_bytes = 0  # what follows on this connection is the next request's head
        super().on_message_complete()

    def _arm(self, seconds: float, part: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, seconds, part)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, seconds: float, part: str) -> None:
        self._deadline = None
        self._refuse(408, f"{part}: not complete within {seconds:g} s")

    def _refuse(self, status: int, message: str) -> None:
        """Log one line, answer `status` if the connection is between answers, and close. A request whose body
        is late gets no answer: its application already waits on it, and sees a disconnect."""
        self._disarm()
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown client"
        log.warning("%d from %s: %s; connection closed", status, client, message)
        if self._head_bytes is not None and (self.cycle is None or self.cycle.response_complete):
            body = json.dumps({"error": message}).encode()
            self.transport.write(b"".join([
                STATUS_LINE[status], b"content-type: application/json\r\n",
                b"content-length: ", str(len(body)).encode(), b"\r\n", b"connection: close\r\n\r\n", body]))
        self.transport.close()


class _Refused(Exception):
    pass


def install(limits: ConnectionLimits, served_paths: frozenset[str]) -> None:
    """Make uvicorn's default protocol (what BentoML's workers use) the limited one, in this process."""
    LimitedHttpToolsProtocol.limits = limits
    LimitedHttpToolsProtocol.served_paths = served_paths
    uvicorn.config.HTTP_PROTOCOLS["auto"] = f"{__name__}:{LimitedHttpToolsProtocol.__name__}"
