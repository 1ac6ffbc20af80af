"""HTTP search over the patient index: ``GET /mpi/patients`` and ``GET /mpi/patients/{id}``."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from mpi.search import MpiSearch

__all__ = ["mpi_router"]

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def mpi_router(search: MpiSearch) -> APIRouter:
    """Routes answering from ``search``; every error is a 4xx with a message."""
    router = APIRouter(prefix="/mpi", tags=["mpi"])

    @router.get("/patients")
    def find_patients(
        identifier: Annotated[str | None, Query(description="AUTHORITY|VALUE, or VALUE alone")] = None,
        family: Annotated[str | None, Query(max_length=200)] = None,
        birthdate: Annotated[str | None, Query(description="YYYY-MM-DD")] = None,
        facility: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict[str, Any]:
        """Patients by identifier, or by family name and birth date; optionally by facility."""
        if identifier:
            authority, _, value = identifier.rpartition("|")
            if not value:
                raise HTTPException(400, "identifier must be AUTHORITY|VALUE or VALUE")
            views = search.by_identifier(authority or None, value, facility)
        elif family or birthdate:
            if birthdate and not _DATE.match(birthdate):
                raise HTTPException(400, "birthdate must be YYYY, YYYY-MM or YYYY-MM-DD")
            if not family or not birthdate:
                raise HTTPException(400, "search by name needs both family and birthdate")
            views = search.by_name_and_birth_date(family, birthdate, facility)
        else:
            raise HTTPException(400, "give identifier=AUTHORITY|VALUE, or family and birthdate")
        return {"total": len(views), "patients": [v.to_dict() for v in views]}

    @router.get("/patients/{patient_id}")
    def get_patient(patient_id: str) -> dict[str, Any]:
        """One patient; a merged patient answers as its survivor."""
        view = search.get(patient_id)
        if view is None:
            raise HTTPException(404, f"no patient {patient_id}")
        return view.to_dict()

    return router
