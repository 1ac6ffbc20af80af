"""The HTTP application: MPI search, health, readiness and metrics (FastAPI)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from inbound.http.fhir import FhirDependencies, fhir_router
from inbound.http.mpi import mpi_router
from mpi.search import MpiSearch

__all__ = ["create_app"]


def create_app(*, search: MpiSearch, ready: Callable[[], Mapping[str, bool | str]],
               metrics: Callable[[], str], version: str,
               fhir: FhirDependencies | None = None) -> FastAPI:
    """The app for one process; ``ready`` names each dependency and whether it is up (True)
    or not (False, or a reason). With ``fhir`` the FHIR API is served under /fhir."""
    app = FastAPI(title="portalbridge", version=version,
                  description="Patient-portal integration engine: MPI, FHIR and account APIs.")
    app.include_router(mpi_router(search))
    if fhir is not None:
        app.include_router(fhir_router(fhir, search, version))

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

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def prometheus_metrics() -> str:
        """Counters in the Prometheus text format."""
        return metrics()

    return app
