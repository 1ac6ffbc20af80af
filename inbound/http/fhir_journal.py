"""Journal entries of FHIR writes: the request, the response, and what its commands did.

A FHIR answer is built after its commands committed (a created Patient is rendered, an
update re-read), so the entry is complete only then: it is deferred to the next group
commit (``engine.journal``), never holding up the response. The effects are the outcomes of
the commands the request applied, noted as they return (``capturing``) in a context
variable that each request sets for itself (``Exchange.noting``).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from engine.commands import Command, Outcome
from engine.journal import JournalEntry, effects_of
from inbound.fhir import Apply

__all__ = ["Exchange", "capturing"]

_APPLIED: contextvars.ContextVar[list[Outcome] | None] = contextvars.ContextVar(
    "fhir_applied", default=None)


def capturing(apply: Apply) -> Apply:
    """``apply``, noting each outcome for the journal entry of the request it serves."""

    async def apply_and_note(command: Command) -> Outcome:
        outcome = await apply(command)
        noted = _APPLIED.get()
        if noted is not None:
            noted.append(outcome)
        return outcome

    return apply_and_note


@dataclass(slots=True)
class Exchange:
    """One FHIR write as it goes: filled in by the gate, turned into an entry at the end."""

    request_id: str
    interaction: str  # "POST Patient", "PUT Patient", "POST Bundle"
    received_at: datetime
    client: str = "fhir"  # the authenticated client's name, when there is one
    body: bytes | None = None
    outcomes: list[Outcome] = field(default_factory=list)

    @contextlib.contextmanager
    def noting(self) -> Iterator[None]:
        """While inside, ``capturing`` notes this request's outcomes here."""
        token = _APPLIED.set(self.outcomes)
        try:
            yield
        finally:
            _APPLIED.reset(token)

    def entry(self, status: int, response: bytes | None) -> JournalEntry:
        code, location = _issue(response) if status >= 400 else ("", "")
        return JournalEntry(
            channel="fhir", sender=self.client, control_id=self.request_id,
            message_type=self.interaction, received_at=self.received_at, outcome=str(status),
            error_code=code, error_location=location, effects=self._effects(),
            payload=self.body, response=response)

    def _effects(self) -> dict[str, Any]:
        if len(self.outcomes) == 1:
            return effects_of(self.outcomes[0])
        return {"parts": [effects_of(o) for o in self.outcomes]} if self.outcomes else {}


def _issue(response: bytes | None) -> tuple[str, str]:
    """The first issue's code and expression of an OperationOutcome body."""
    try:
        issue = orjson.loads(response or b"{}")["issue"][0]
        return str(issue.get("code", "")), str((issue.get("expression") or [""])[0])
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return "", ""
