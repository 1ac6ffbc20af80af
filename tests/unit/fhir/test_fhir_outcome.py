"""Every error of the engine's tree has an HTTP status and an OperationOutcome with an expression."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from engine import errors
from engine.errors import EngineError
from inbound.fhir.errors import FhirError
from inbound.fhir.outcome import error_outcome, status_line

CASES: list[tuple[EngineError, int, str, str]] = [
    (errors.PreconditionFailed("record r is at version 2, not 1", "If-Match"), 412, "conflict",
     "http.If-Match"),
    (errors.PreconditionFailed("matches 2", "If-None-Exist"), 412, "conflict", "http.If-None-Exist"),
    (errors.Conflict("identifier in use", "PID-3"), 409, "conflict", "Patient.identifier"),
    (errors.NotFound("no record x", "MRG-1"), 404, "not-found", "Patient.id"),
    (errors.InvalidMessage("record x was merged", "Patient.link[0].other"), 422, "business-rule",
     "Patient.link[0].other"),
    (errors.UnroutableMessage("unknown facility", "MSH-4"), 422, "business-rule",
     "Patient.managingOrganization"),
    (errors.MalformedMessage("unreadable"), 400, "invalid", "Patient"),
    (errors.AlreadyMember("already a pending member", None), 409, "conflict", "identifier"),
    (errors.PolicyRefused("too short"), 400, "invalid", "Patient"),
    (errors.RejectedMessage("refused"), 400, "invalid", "Patient"),
    (errors.StoreUnavailable("database unavailable"), 503, "transient", "Patient"),
    (errors.TransientFailure("try later"), 503, "transient", "Patient"),
    (errors.ConfigurationError("bad config"), 500, "exception", "Patient"),
    (EngineError("boom"), 500, "exception", "Patient"),
    (FhirError(415, "not json", "http.Content-Type", code="not-supported"), 415, "not-supported",
     "http.Content-Type"),
]


def test_every_error_class_is_covered() -> None:
    classes = {cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, EngineError)}
    assert classes <= {type(error) for error, *_ in CASES}


@pytest.mark.parametrize(("error", "status", "code", "expression"), CASES)
def test_error_outcomes(error: EngineError, status: int, code: str, expression: str) -> None:
    found_status, outcome, headers = error_outcome(error)
    OperationOutcome.model_validate(outcome)
    issue = outcome["issue"][0]
    assert (found_status, issue["code"], issue["expression"]) == (status, code, [expression])
    assert issue["diagnostics"]
    assert ("Retry-After" in headers) == (status == 503)
    if status == 500:
        assert "boom" not in issue["diagnostics"]  # internals are not told to the client


def test_status_lines() -> None:
    assert [status_line(s) for s in (200, 201, 404, 412)] == [
        "200 OK", "201 Created", "404 Not Found", "412 Precondition Failed"]
