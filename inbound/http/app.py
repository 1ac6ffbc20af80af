"""The HTTP application: MPI search, the Workbench, FHIR, health, readiness, metrics (FastAPI)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from engine.audit import AuditLog
from engine.domain.clock import Clock
from engine.journal import JournalStore
from engine.metrics import CONTENT_TYPE
from engine.staff import StaffDirectory
from engine.store.errors import classify_store_error
from inbound.http.accounts import accounts_router
from inbound.http.auth import StaffAuth
from inbound.http.fhir import FhirDependencies, fhir_router
from inbound.http.limits import BoundedRequests, RequestLimits
from inbound.http.mpi import mpi_router
from inbound.http.portal import PortalDependencies, portal_router
from inbound.http.portal_signin import signin_router
from inbound.http.workbench import audit_router, messages_router
from inbound.http.workbench.enrollments import enrollment_router
from inbound.http.workbench.letters import letters_router
from inbound.http.workbench.members import members_router
from inbound.http.workbench.membership_deps import MembershipHttp
from mpi.search import MpiSearch

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(*, search: MpiSearch, staff: StaffDirectory, audit: AuditLog, clock: Clock,
               ready: Callable[[], Mapping[str, bool | str]], metrics: Callable[[], bytes],
               version: str, fhir: FhirDependencies | None = None,
               messages: JournalStore | None = None,
               limits: RequestLimits | None = None,
               portal: PortalDependencies | None = None,
               membership: MembershipHttp | None = None) -> FastAPI:
    """The app for one process; ``ready`` names each dependency and whether it is up (True)
    or not (False, or a reason), and ``metrics`` gives the Prometheus text. ``staff``
    authenticates the bearer tokens of /mpi and /workbench; ``audit`` records what staff
    did. With ``fhir`` the FHIR API is served under /fhir; with ``messages`` the message
    journal under /workbench/messages; ``limits`` bound every request's head and body; with
    ``portal`` and ``membership`` the member and Workbench membership routes."""
    app = FastAPI(title="portalbridge", version=version,
                  description="Patient-portal integration engine: MPI, FHIR and account APIs.")
    auth = StaffAuth(staff, audit)
    app.include_router(mpi_router(search, auth, audit))
    app.include_router(audit_router(auth, audit, clock))
    if messages is not None:
        app.include_router(messages_router(auth, messages, audit, clock))
    app.add_exception_handler(SQLAlchemyError, _database_unavailable)
    if fhir is not None:
        app.include_router(fhir_router(fhir, search, version))
    if portal is not None:
        app.include_router(portal_router(portal))
        app.include_router(signin_router(portal))
    if membership is not None:
        app.include_router(enrollment_router(auth, membership))
        app.include_router(members_router(auth, membership))
        app.include_router(letters_router(auth, membership))
        app.include_router(accounts_router(auth, membership))

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        """Every dependency this process needs is up (503, which one and why otherwise)."""
        checks = ready()
        reasons = {name: value for name, value in checks.items() if isinstance(value, str)}
        ok = all(value is True for value in checks.values())
        body: dict[str, Any] = {"ready": ok, "checks": {n: v is True for n, v in checks.items()}}
        if reasons:
            body["reasons"] = reasons
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def prometheus_metrics() -> Response:
        """Counters, gauges and histograms in the Prometheus text format."""
        return Response(metrics(), media_type=CONTENT_TYPE)

    if limits is not None:
        app.add_middleware(BoundedRequests, limits=limits)
    return app


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A read the database could not answer: 503, try again (the FHIR API says so itself)."""
    error = classify_store_error(exc)
    log.warning("HTTP %s %s: %s", request.method, request.url.path, error.reason)
    return JSONResponse({"detail": f"the patient index is unavailable: {error.reason}"},
                        status_code=503, headers={"Retry-After": "1"})
