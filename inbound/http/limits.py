"""Requests, bounded for every route: head size (431), body size (413), body deadline (408).

h11 (under uvicorn) bounds only the part of a head it must buffer while it is incomplete; a
whole head that arrives in one read is checked here against ``max_header_bytes``. The body
is read here, in full, before the application sees the request: a route never
waits on a client that trickles its body (the deadline answers 408 and closes the
connection), and no route can forget the size limit. Every route reads whole bodies anyway.
Under ``/fhir`` the limit is routing.yaml's ``fhir.max_body_bytes`` and the refusal an
OperationOutcome; elsewhere it is ``PORTALBRIDGE_HTTP_MAX_BODY_BYTES`` and ``{"detail": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inbound.fhir import FhirError, error_outcome

__all__ = ["BoundedRequests", "RequestLimits"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestLimits:
    """Limits of every request to the HTTP API."""

    max_header_bytes: int  # request line and headers
    max_body_bytes: int
    fhir_max_body_bytes: int
    body_timeout: float  # seconds for the whole body, from the end of the head


#: The OperationOutcome's expression and issue type for each refusal under /fhir.
_FHIR_ISSUES = {413: ("http.Content-Length", "too-costly"), 431: ("http", "too-costly"),
                408: ("http.body", "timeout")}


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class BoundedRequests:
    """ASGI middleware: a head within its size, and the body read within its size and time."""

    def __init__(self, app: ASGIApp, limits: RequestLimits) -> None:
        self._app = app
        self._limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        fhir = path == "/fhir" or path.startswith("/fhir/")
        limit = self._limits.fhir_max_body_bytes if fhir else self._limits.max_body_bytes
        setting = "fhir.max_body_bytes" if fhir else "PORTALBRIDGE_HTTP_MAX_BODY_BYTES"
        try:
            _check_head(scope, self._limits.max_header_bytes)
            _check_declared_length(scope, limit, setting)
            async with asyncio.timeout(self._limits.body_timeout):
                body, disconnected = await _read_body(receive, limit, setting)
        except TimeoutError:
            log.info("HTTP %s %s: the body did not arrive within %.0f s; closing", scope["method"],
                     path, self._limits.body_timeout)
            await _refuse(send, fhir, _Refused(408, "the request body did not arrive within "
                                               f"{self._limits.body_timeout:g} s"))
            return
        except _Refused as refused:
            await _refuse(send, fhir, refused)
            return
        if disconnected:
            return  # the client left; nobody to answer
        await self._app(scope, _replay(body, receive), send)


def _check_head(scope: Scope, limit: int) -> None:
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    size += sum(len(name) + len(value) + 4 for name, value in scope.get("headers", ()))
    if size > limit:
        raise _Refused(431, f"the request line and headers are larger than {limit} bytes "
                       "(PORTALBRIDGE_HTTP_MAX_HEADER_BYTES)")


def _check_declared_length(scope: Scope, limit: int, setting: str) -> None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise _Refused(413, f"the body is larger than {limit} bytes ({setting})")


async def _read_body(receive: Receive, limit: int, setting: str) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", True
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"the body is larger than {limit} bytes ({setting})")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the application the body already read, then the real one."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()  # only ``http.disconnect`` is left to come
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(send: Send, fhir: bool, refused: _Refused) -> None:
    """The refusal, closing the connection: the rest of the body will not be read."""
    content: Any
    if fhir:
        expression, code = _FHIR_ISSUES[refused.status]
        error = FhirError(refused.status, refused.reason, expression, code=code)
        _, content, _ = error_outcome(error, "Resource")
        media_type = b"application/fhir+json; charset=utf-8"
    else:
        content, media_type = {"detail": refused.reason}, b"application/json"
    payload = json.dumps(content).encode("utf-8")
    await send({"type": "http.response.start", "status": refused.status, "headers": [
        (b"content-type", media_type), (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})
