"""The FHIR REST API under ``/fhir`` (FastAPI): HTTP concerns only.

Here: media types (415/406), body size (413), bearer tokens (401), the ``Prefer`` header,
response headers, and turning every error into an OperationOutcome. The interactions
themselves live in ``inbound.fhir``. Each request gets a fresh id: it is the control id of
its command (the inbox dedupes on it, events carry it as correlation id) and is echoed in
the ``X-Request-ID`` response header (``<process uuid>.<n>``).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from engine.domain.clock import Clock, IdSource
from engine.errors import EngineError, TransientFailure
from engine.rules import FhirRules, RoutingRules
from engine.store.errors import classify_store_error, is_store_error
from inbound.fhir import (
    Apply,
    Call,
    FhirApi,
    FhirResponse,
    authenticate,
    capability_statement,
    error_outcome,
    issues_of,
    process_bundle,
    read_json,
    version_of_media_type,
)
from inbound.fhir.auth import SETUP_HINT
from inbound.fhir.errors import FhirError
from inbound.fhir.parse import FhirVersion
from inbound.fhir.service import Prefer
from mpi.search import MpiSearch

__all__ = ["FHIR_JSON", "FhirDependencies", "fhir_router"]

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
_JSON_TYPES = frozenset({FHIR_JSON, "application/json", "application/json+fhir"})
_ACCEPTABLE = _JSON_TYPES | {"*/*", "application/*"}
_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
_RETURNS: dict[str, Prefer] = {"minimal": "minimal", "representation": "representation",
                               "OperationOutcome": "OperationOutcome"}

Work = Callable[[Call, dict[str, Any] | None], Awaitable[FhirResponse]]


@dataclass(frozen=True, slots=True, kw_only=True)
class FhirDependencies:
    """What the FHIR API needs from the runtime (wired in ``engine.bootstrap``)."""

    apply: Apply  # the group committer's apply: returns after commit
    rules: RoutingRules
    ids: IdSource
    clock: Clock


def fhir_router(deps: FhirDependencies, search: MpiSearch, version: str) -> APIRouter:
    """The ``/fhir`` routes; every answer is FHIR JSON, every error an OperationOutcome."""
    api = FhirApi(apply=deps.apply, search=search, rules=deps.rules, ids=deps.ids)
    gate = _Gate(deps)
    _log_access_policy(deps.rules.fhir)
    published = deps.clock.now()
    router = APIRouter(prefix="/fhir", tags=["fhir"])

    @router.get("/metadata")
    async def metadata(request: Request) -> Response:
        """The CapabilityStatement (no token needed)."""
        return _response(FhirResponse(200, capability_statement(
            deps.rules, base=_base(request), software_version=version, published=published)), "")

    @router.post("/Patient")
    async def create(request: Request) -> Response:
        """Create a Patient (conditional with If-None-Exist)."""
        return await gate.run(request, "Patient", lambda call, data: api.create(
            call, _body(data), request.headers.get("if-none-exist")))

    @router.put("/Patient/{record_id}")
    async def update(request: Request, record_id: str) -> Response:
        """Update a Patient, or create it under this id (If-Match: W/"n")."""
        return await gate.run(request, "Patient", lambda call, data: api.update(
            call, record_id, _body(data), request.headers.get("if-match")))

    @router.get("/Patient/{record_id}")
    async def read(request: Request, record_id: str) -> Response:
        """Read a Patient (a FHIR Patient is one facility's source record)."""
        return await gate.run(request, "Patient", lambda call, _: api.read(record_id), body=False)

    @router.get("/Patient/{record_id}/_history/{version_id}")
    async def vread(request: Request, record_id: str, version_id: str) -> Response:
        """Read a version of a Patient: only the current one is kept."""
        return await gate.run(request, "Patient", lambda call, _: api.read(record_id, version_id),
                              body=False)

    @router.get("/Patient")
    async def find(request: Request) -> Response:
        """Search Patients by identifier=system|value: a searchset Bundle."""
        params = list(request.query_params.multi_items())
        return await gate.run(request, "Patient", lambda call, _: api.find(call, params), body=False)

    @router.post("")
    async def bundle(request: Request) -> Response:
        """A transaction or batch Bundle of Patient entries."""
        return await gate.run(request, "Bundle", lambda call, data: process_bundle(api, call, _body(data)))

    @router.api_route("/{rest:path}", methods=_METHODS, include_in_schema=False)
    async def unsupported(request: Request, rest: str) -> Response:
        kind = rest.split("/", 1)[0]
        error = (FhirError(405, f"{request.method} is not supported on {kind}", "http.method",
                           code="not-supported") if kind in ("Patient", "metadata", "")
                 else FhirError(404, f"'{kind}' is not supported: this server keeps Patient "
                                "resources only", "http.url", code="not-supported"))
        return _error(error, "Patient", gate.new_id())

    return router


def _log_access_policy(rules: FhirRules) -> None:
    if rules.allow_anonymous:
        log.warning("fhir.allow_anonymous is true: anyone who reaches this port can read and "
                    "write patients as any facility the resource names. Use it for demos only; "
                    "for anything else %s", SETUP_HINT)
    elif not rules.clients:
        log.info("FHIR: routing.yaml lists no clients, so every FHIR request but /fhir/metadata "
                 "is refused (401); %s", SETUP_HINT)


class _Gate:
    """The checks every interaction passes, in order: Accept, token, media type, size."""

    def __init__(self, deps: FhirDependencies) -> None:
        self._deps = deps
        # A random prefix per process and a counter: unique like a UUID per request, without
        # a system call on every request.
        self._prefix = deps.ids.new_uuid()
        self._numbers = itertools.count(1)

    def new_id(self) -> str:
        return f"{self._prefix}.{next(self._numbers)}"

    async def run(self, request: Request, root: str, work: Work, *, body: bool = True) -> Response:
        request_id = self.new_id()
        try:
            _check_accept(request)
            client = authenticate(self._deps.rules.fhir, request.headers.get("authorization"))
            declared = _content_version(request) if body else None
            prefer = _prefer(request)
            call = Call(base=_base(request), client=client, request_id=request_id, version=declared,
                        prefer=_RETURNS.get(prefer.get("return", ""), "representation"),
                        strict=prefer.get("handling") == "strict")
            data = read_json(await self._body(request), root) if body else None
            return _response(await work(call, data), request_id)
        except EngineError as exc:
            return _error(exc, root, request_id)
        except Exception as exc:  # the database on a read (503), else a bug (500, with the trace)
            error = classify_store_error(exc) if is_store_error(exc) else None
            if not isinstance(error, TransientFailure):
                log.exception("FHIR %s %s failed (request %s)", request.method, request.url.path,
                              request_id)
                error = EngineError("internal error")
            return _error(error, root, request_id)

    async def _body(self, request: Request) -> bytes:
        limit = self._deps.rules.fhir.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)


def _too_large(limit: int) -> FhirError:
    return FhirError(413, f"the body is larger than {limit} bytes (fhir.max_body_bytes)",
                     "http.Content-Length", code="too-costly")


def _content_version(request: Request) -> FhirVersion | None:
    """Refuse bodies that are not FHIR JSON (415); return the fhirVersion it declares."""
    header = request.headers.get("content-type", "")
    media_type, *params = (p.strip() for p in header.split(";"))
    if media_type.lower() not in _JSON_TYPES:
        raise FhirError(415, f"Content-Type must be {FHIR_JSON} (or application/json), not "
                        f"'{media_type or 'none'}'", "http.Content-Type", code="not-supported")
    values = {k.strip().lower(): v.strip().strip('"') for k, _, v in (p.partition("=") for p in params)}
    if values.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise FhirError(415, f"charset {values['charset']} is not supported: FHIR JSON is UTF-8",
                        "http.Content-Type", code="not-supported")
    return version_of_media_type(values.get("fhirversion"))


def _check_accept(request: Request) -> None:
    accept = request.headers.get("accept")
    if not accept:
        return
    ranges = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if not ranges & _ACCEPTABLE:
        raise FhirError(406, f"this server answers in {FHIR_JSON} only", "http.Accept",
                        code="not-supported")


def _prefer(request: Request) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in request.headers.get("prefer", "").split(","):
        key, _, value = part.strip().partition("=")
        if key:
            found[key.lower()] = value.strip().strip('"')
    return found


def _base(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}/fhir"


def _body(data: dict[str, Any] | None) -> dict[str, Any]:
    assert data is not None  # routes that take a body always read one
    return data


def _response(answer: FhirResponse, request_id: str) -> Response:
    headers = dict(answer.headers)
    if request_id:
        headers["X-Request-ID"] = request_id
    if answer.body is None:
        return Response(status_code=answer.status, headers=headers)
    content = json.dumps(answer.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(content, status_code=answer.status, headers=headers,
                    media_type=f"{FHIR_JSON}; charset=utf-8")


def _error(error: EngineError, root: str, request_id: str) -> Response:
    code, outcome, headers = error_outcome(error, root)
    issue = issues_of(error, root)[0]
    # Ids, statuses and element paths only: diagnostics may quote values, which may be PHI.
    log.info("FHIR request %s refused %d %s at %s", request_id, code, issue.code,
             issue.log_expression)
    return _response(FhirResponse(code, outcome, headers), request_id)
