"""Errors as OperationOutcomes, with the HTTP status each one means.

| error                                        | status | issue type                |
| -------------------------------------------- | ------ | ------------------------- |
| FhirError (edge: JSON, structure, headers)   | its own (400 401 403 404 405 406 413 415 422) |
| PreconditionFailed (If-Match, If-None-Exist) | 412    | conflict                  |
| Conflict (identifier or record in use)       | 409    | conflict                  |
| NotFound                                     | 404    | not-found                 |
| InvalidMessage, UnroutableMessage (the core's business rules, e.g. a link to an  |
| unknown record)                              | 422    | business-rule             |
| other RejectedMessage (MalformedMessage)     | 400    | invalid                   |
| TransientFailure (database down, ...)        | 503    | transient (+ Retry-After) |
| anything else                                | 500    | exception                 |

Every issue carries ``diagnostics`` (what is wrong, in words) and ``expression`` (where:
an element path, or ``http.<header>`` for a request header).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from engine.errors import (
    Conflict,
    EngineError,
    InvalidMessage,
    NotFound,
    PreconditionFailed,
    RejectedMessage,
    TransientFailure,
    UnroutableMessage,
)
from inbound.fhir.errors import FhirError, Issue

__all__ = ["error_outcome", "fhir_expression", "issues_of", "operation_outcome", "status_line",
           "status_of"]

#: Locations the core names in HL7 or header terms, as FHIR expressions.
_CORE_LOCATIONS = {
    # MRG-1 reaches a FHIR write only as "this record was merged away": the record is the id.
    "PID-3": "Patient.identifier", "MRG-1": "Patient.id", "MSH-4": "Patient.managingOrganization",
    "If-Match": "http.If-Match", "If-None-Exist": "http.If-None-Exist",
}
_ISSUE_TYPES = {404: "not-found", 409: "conflict", 412: "conflict", 422: "business-rule",
                503: "transient", 500: "exception"}


def status_of(error: EngineError) -> int:
    """The HTTP status an error is answered with."""
    if isinstance(error, FhirError):
        return error.status
    for kind, status in ((PreconditionFailed, 412), (Conflict, 409), (NotFound, 404),
                         (InvalidMessage, 422), (UnroutableMessage, 422), (RejectedMessage, 400),
                         (TransientFailure, 503)):
        if isinstance(error, kind):
            return status
    return 500


def fhir_expression(location: str | None, default: str) -> str:
    """A core location (``PID-3``, ``If-Match``) as a FHIR expression; ``default`` if none."""
    if not location:
        return default
    return _CORE_LOCATIONS.get(location, location)


def issues_of(error: EngineError, default_expression: str = "Patient") -> tuple[Issue, ...]:
    """The issues that describe ``error``."""
    if isinstance(error, FhirError):
        return error.issues
    status = status_of(error)
    location = error.location if isinstance(error, RejectedMessage) else None
    reason = error.reason if status != 500 else "internal error; the request was not applied"
    return (Issue(reason, fhir_expression(location, default_expression),
                  _ISSUE_TYPES.get(status, "invalid")),)


def operation_outcome(issues: tuple[Issue, ...]) -> dict[str, Any]:
    """An OperationOutcome resource (valid in R4, R4B and R5)."""
    return {"resourceType": "OperationOutcome", "issue": [
        {"severity": i.severity, "code": i.code, "diagnostics": i.diagnostics,
         "expression": [i.expression]} for i in issues]}


def error_outcome(error: EngineError,
                  default_expression: str = "Patient") -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, OperationOutcome and extra headers for ``error``."""
    status = status_of(error)
    headers = dict(error.headers) if isinstance(error, FhirError) else {}
    if status == 503:
        headers.setdefault("Retry-After", "1")
    return status, operation_outcome(issues_of(error, default_expression)), headers


def status_line(status: int) -> str:
    """``201 Created``: how Bundle.entry.response.status spells a status."""
    return f"{status} {HTTPStatus(status).phrase}"
