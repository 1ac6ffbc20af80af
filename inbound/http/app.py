"""The HTTP application: MPI search, the Workbench, FHIR, health, readiness, metrics (FastAPI)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from engine.audit import AuditLog
from engine.domain.clock import Clock
from engine.staff import StaffDirectory
from inbound.http.accounts import accounts_router
from inbound.http.auth import StaffAuth
from inbound.http.fhir import FhirDependencies, fhir_router
from inbound.http.mpi import mpi_router
from inbound.http.portal import PortalDependencies, portal_router
from inbound.http.workbench import audit_router
from inbound.http.workbench.enrollments import enrollment_router
from inbound.http.workbench.members import members_router
from inbound.http.workbench.membership_deps import MembershipHttp
from mpi.search import MpiSearch

__all__ = ["create_app"]


def create_app(*, search: MpiSearch, staff: StaffDirectory, audit: AuditLog, clock: Clock,
               ready: Callable[[], dict[str, bool]], metrics: Callable[[], str], version: str,
               fhir: FhirDependencies | None = None,
               portal: PortalDependencies | None = None,
               membership: MembershipHttp | None = None) -> FastAPI:
    """The app for one process; ``ready`` names each dependency and whether it is up.
    ``staff`` authenticates the bearer tokens of /mpi and /workbench; ``audit`` records what
    staff did. With ``fhir`` the FHIR API is served under /fhir."""
    app = FastAPI(title="portalbridge", version=version,
                  description="Patient-portal integration engine: MPI, FHIR and account APIs.")
    auth = StaffAuth(staff, audit)
    app.include_router(mpi_router(search, auth, audit))
    app.include_router(audit_router(auth, audit, clock))
    if fhir is not None:
        app.include_router(fhir_router(fhir, search, version))
    if portal is not None:
        app.include_router(portal_router(portal))
    if membership is not None:
        app.include_router(enrollment_router(auth, membership))
        app.include_router(members_router(auth, membership))
        app.include_router(accounts_router(auth, membership))

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        """Every dependency this process needs is up (503 and which one otherwise)."""
        checks = ready()
        status = 200 if all(checks.values()) else 503
        return JSONResponse({"ready": status == 200, "checks": checks}, status_code=status)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def prometheus_metrics() -> str:
        """Counters in the Prometheus text format."""
        return metrics()

    return app
