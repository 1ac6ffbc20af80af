"""uvicorn, configured with the API's limits: header size, concurrency, keep-alive, deadlines.

uvicorn bounds the size of a request head (h11's incomplete-event limit), the number of open
connections and requests (``limit_concurrency``: 503 beyond it) and the keep-alive idle time,
but not the time a client may take to send its request head: a client trickling headers
would hold its connection for ever. ``TimedH11Protocol`` adds that deadline (and closes a
connection that sends nothing at all after the keep-alive time). It subclasses uvicorn's h11
protocol and reads h11's connection state through it; tests/integration/test_http_limits.py
fails if a uvicorn release changes what it relies on. Bodies are bounded by
``inbound.http.limits``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from engine.config import ListenerLimits

__all__ = ["TimedH11Protocol", "uvicorn_config"]

log = logging.getLogger(__name__)

_TIMEOUT_TEXT = b"the request head took too long"
_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                     b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
                     % (len(_TIMEOUT_TEXT), _TIMEOUT_TEXT))


def uvicorn_config(app: Any, limits: ListenerLimits, host: str, port: int, *,
                   log_level: str = "warning") -> uvicorn.Config:
    """The server configuration of the HTTP API, with every limit from the settings. uvicorn
    gets no logging configuration of its own: its records go through the engine's."""
    protocol = type("TimedH11", (TimedH11Protocol,), {
        "head_timeout": limits.http_request_timeout,
        "first_byte_timeout": float(limits.http_keepalive_timeout)})
    tls: dict[str, Any] = {}
    if limits.tls_cert_file is not None and limits.tls_key_file is not None:
        tls = {"ssl_certfile": str(limits.tls_cert_file), "ssl_keyfile": str(limits.tls_key_file)}
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                          lifespan="off", log_config=None, http=protocol,
                          h11_max_incomplete_event_size=limits.http_max_header_bytes,
                          limit_concurrency=limits.http_max_concurrency,
                          timeout_keep_alive=limits.http_keepalive_timeout, **tls)


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for every request head."""

    head_timeout: float = 30.0  # seconds from a request's first byte to the end of its head
    first_byte_timeout: float = 5.0  # seconds a new connection may stay silent

    _deadline: asyncio.TimerHandle | None = None
    _head_started = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.first_byte_timeout)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # the head is in: the body has its own deadline (BoundedRequests)
            self._head_started = False
        elif not self._head_started and not self.transport.is_closing():
            self._arm(self.head_timeout)
            self._head_started = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = asyncio.get_running_loop().call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self._head_started:
            log.info("closing an HTTP connection: no complete request head within %.0f s "
                     "(PORTALBRIDGE_HTTP_REQUEST_TIMEOUT)", self.head_timeout)
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()
