"""Refusals decided at the FHIR edge, each with its HTTP status and FHIR issue type.

The engine's tree (``engine.errors``) decides what the core refuses; the FHIR edge refuses a
few more things before a command exists (unreadable JSON, wrong content type, a missing
token), and some of them need several issues in one OperationOutcome (every invalid element
of a resource). ``FhirError`` is a ``RejectedMessage``, so everything that understands the
engine's tree (logging, ``route explain``) understands it too.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import RejectedMessage

__all__ = ["FhirError", "Issue", "place_under"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome issue: what is wrong (``diagnostics``) and where (``expression``).

    ``code`` is a FHIR IssueType (invalid, structure, required, value, code-invalid,
    business-rule, not-supported, ...). Expressions are FHIRPath-like element paths such as
    ``Patient.name[0].given[0]``, or ``http.<name>`` for an HTTP header or parameter, as
    the OperationOutcome definition asks.
    """

    diagnostics: str
    expression: str
    code: str = "invalid"
    severity: str = "error"
    #: The expression for log lines, when ``expression`` holds a key the sender chose
    #: (an unknown element): keys are the sender's text, and logs carry no sender text.
    logged: str | None = None

    @property
    def log_expression(self) -> str:
        return self.expression if self.logged is None else self.logged


class FhirError(RejectedMessage):
    """A request refused by the FHIR edge; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str, expression: str, *, code: str = "invalid",
                 issues: tuple[Issue, ...] = (), headers: dict[str, str] | None = None) -> None:
        super().__init__(reason, expression)
        self.status = status
        self.code = code
        self.issues = issues or (Issue(reason, expression, code),)
        self.headers = headers or {}


def place_under(prefix: str, expression: str) -> str:
    """An expression about a resource, moved to where that resource sits in a Bundle:
    ``Patient.name[0]`` under ``Bundle.entry[2].resource`` is ``Bundle.entry[2].resource.name[0]``."""
    if expression.startswith("http.") or not prefix:
        return expression
    head, _, rest = expression.partition(".")
    if head and head[0].isupper():  # a resource type: the entry's resource stands for it
        return f"{prefix}.{rest}" if rest else prefix
    return f"{prefix}.{expression}" if expression else prefix
