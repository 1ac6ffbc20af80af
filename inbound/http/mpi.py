"""HTTP search over the patient index: ``GET /mpi/patients`` and ``GET /mpi/patients/{id}``.

These answers carry SSNs and every other demographic: each route needs a staff token with
one of ``MPI_READERS``, and each answer is written to the audit log (who read which patient
ids; never the query's values) before it is sent. If the entry cannot be written, the data
is not served.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from engine.audit import AuditEntry, AuditLog
from engine.errors import TransientFailure
from engine.staff import Role, StaffPrincipal
from inbound.http.auth import StaffAuth
from mpi.search import MpiSearch

__all__ = ["MPI_READERS", "mpi_router"]

#: Who may read the patient index.
MPI_READERS = (Role.DIRECT_ENROLLMENT_USER, Role.MEMBER_ACCOUNT_MANAGER,
               Role.ENROLLMENT_REQUEST_AGENT, Role.ENROLLMENT_EXCEPTION_AGENT, Role.ADMINISTRATOR)
_MAX_AUDITED_IDS = 50

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def mpi_router(search: MpiSearch, auth: StaffAuth, audit: AuditLog) -> APIRouter:
    """Routes answering from ``search``; every error is a 4xx with a message."""
    router = APIRouter(prefix="/mpi", tags=["mpi"])
    # A default, not Annotated[...]: with postponed annotations FastAPI resolves names from
    # the module's globals, and this dependency is local to the router.
    reader = Depends(auth.requires(*MPI_READERS))

    @router.get("/patients")
    def find_patients(
        identifier: Annotated[str | None, Query(description="AUTHORITY|VALUE, or VALUE alone")] = None,
        family: Annotated[str | None, Query(max_length=200)] = None,
        birthdate: Annotated[str | None, Query(description="YYYY-MM-DD")] = None,
        facility: Annotated[str | None, Query(max_length=64)] = None,
        staff: StaffPrincipal = reader,
    ) -> dict[str, Any]:
        """Patients by identifier, or by family name and birth date; optionally by facility."""
        if identifier:
            authority, _, value = identifier.rpartition("|")
            if not value:
                raise HTTPException(400, "identifier must be AUTHORITY|VALUE or VALUE")
            views, by = search.by_identifier(authority or None, value, facility), "identifier"
        elif family or birthdate:
            if birthdate and not _DATE.match(birthdate):
                raise HTTPException(400, "birthdate must be YYYY, YYYY-MM or YYYY-MM-DD")
            if not family or not birthdate:
                raise HTTPException(400, "search by name needs both family and birthdate")
            views, by = search.by_name_and_birth_date(family, birthdate, facility), "name"
        else:
            raise HTTPException(400, "give identifier=AUTHORITY|VALUE, or family and birthdate")
        ids = [v.patient.id for v in views]
        _audit(audit, AuditEntry(
            actor=staff.actor, action="mpi.search", outcome="success",
            patient_id=ids[0] if len(ids) == 1 else None,
            detail={"by": by, "results": str(len(ids)), "patient_ids": ",".join(ids[:_MAX_AUDITED_IDS])}))
        return {"total": len(views), "patients": [v.to_dict() for v in views]}

    @router.get("/patients/{patient_id}")
    def get_patient(patient_id: str, staff: StaffPrincipal = reader) -> dict[str, Any]:
        """One patient; a merged patient answers as its survivor."""
        view = search.get(patient_id)
        if view is None:
            raise HTTPException(404, f"no patient {patient_id}")
        _audit(audit, AuditEntry(actor=staff.actor, action="mpi.read", outcome="success",
                                 patient_id=view.patient.id))
        return view.to_dict()

    return router


def _audit(audit: AuditLog, entry: AuditEntry) -> None:
    try:
        audit.append(entry)
    except TransientFailure:
        raise HTTPException(503, "the audit log is unavailable; try again shortly",
                            headers={"Retry-After": "5"}) from None
