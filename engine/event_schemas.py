"""JSON Schemas of the member status and credential events, generated from the classes that
emit them.

``MemberStatusChanged.data()`` (``MemberCredentialEvent.data()``) is the event's ``data``;
the statuses each change can come from and go to are the classes' ``OLD``/``NEW``.
``python -m engine.event_schemas`` writes ``engine/schemas/member.*.json``; a test fails when
the files and the code disagree.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from engine.domain.events import (
    CREDENTIAL_EVENTS,
    MEMBER_EVENTS,
    MemberCredentialEvent,
    MemberEnrolledEvent,
    MemberLockedEvent,
    MemberStatusChanged,
)

MemberEventKind = type[MemberStatusChanged] | type[MemberCredentialEvent]
_STATUSES = ["pending", "active", "inactive", "inactive/minor"]
_ACTOR = {"type": "object", "required": ["type", "id"], "additionalProperties": False,
          "description": "Who made the change.",
          "properties": {"type": {"enum": ["system", "interface", "staff", "member"]},
                         "id": {"type": "string",
                                "description": "The staff user, member or interface id."}}}

__all__ = ["member_schema", "render", "write_all"]

_ENVELOPE_TEXT = {
    "id": "Event id; a redelivery or replay carries the same id: dedupe on it.",
    "source": "routing.yaml events.source (default urn:portalbridge).",
    "subject": "The portal member id.",
    "time": "When the change was committed (RFC 3339, UTC).",
}
_IDENTIFIER = {
    "type": "object", "required": ["value", "authority", "type"], "additionalProperties": False,
    "properties": {"value": {"type": "string", "minLength": 1},
                   "authority": {"type": "string", "description": "assigning authority (CX-4)"},
                   "type": {"type": "string", "description": "identifier type code (CX-5), e.g. MR"}},
}


#: The first members of every member event's ``data``: whose event it is.
_WHOSE: dict[str, Any] = {
        "member_id": {"type": "string", "minLength": 1,
                      "description": "The portal member (account) id (also the event subject)."},
        "patient_id": {"type": "string", "minLength": 1, "description": "The member's MPI patient id."},
        "identifiers": {"type": "array", "items": {"$ref": "#/$defs/identifier"},
                        "description": "The patient's MPI identifiers (MRNs by assigning authority)."},
}


def _status(values: tuple[str | None, ...], what: str) -> dict[str, Any]:
    return {"enum": list(values), "description": f"Membership status {what} the change."}


def _credential_data(kind: type[MemberCredentialEvent]) -> dict[str, Any]:
    properties: dict[str, Any] = {
        **_WHOSE,
        "membership_status": {"enum": _STATUSES, "description": "The membership status (unchanged)."},
        "reason": {"type": ["string", "null"], "description": "Why (a lockout mechanism, "
                   "\"password reset\", \"the lock period ended\", a staff member's words)."},
        "actor": _ACTOR,
        "occurred_at": {"type": "string", "format": "date-time"},
    }
    if issubclass(kind, MemberLockedEvent):
        properties["mechanism"] = {"type": "string", "description": "The lockout mechanism: "
                                   "time-based, successive-failure or the custom one's name."}
        properties["locked_until"] = {"type": ["string", "null"], "format": "date-time",
                                      "description": "The end of the lock; null: until a password reset."}
    return {"type": "object", "required": list(properties), "additionalProperties": False,
            "properties": properties}


def _data(kind: MemberEventKind) -> dict[str, Any]:
    if issubclass(kind, MemberCredentialEvent):
        return _credential_data(kind)
    properties: dict[str, Any] = {
        **_WHOSE,
        "old_status": _status(kind.OLD, "before"),
        "new_status": _status(kind.NEW, "after"),
        "enrollment_status": {"enum": ["Yes"],
                              "description": "Enrollment status (Yes once a token was issued)."},
        "reason": {"type": ["string", "null"], "description": "Why, in the words of the person who acted."},
        "actor": _ACTOR,
        "occurred_at": {"type": "string", "format": "date-time"},
    }
    if issubclass(kind, MemberEnrolledEvent):
        properties["enrollment_method"] = {"enum": ["automated", "point_of_care"],
                                           "description": "How the member was enrolled."}
    return {"type": "object", "required": list(properties), "additionalProperties": False,
            "properties": properties}


def member_schema(kind: MemberEventKind) -> dict[str, Any]:
    """The CloudEvent JSON Schema of one member event type."""
    type_name = f"org.portalbridge.{kind.routing_key}.v1"
    envelope: dict[str, Any] = {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "minLength": 1, "description": _ENVELOPE_TEXT["id"]},
        "source": {"type": "string", "minLength": 1, "description": _ENVELOPE_TEXT["source"]},
        "type": {"const": type_name},
        "subject": {"type": "string", "minLength": 1, "description": _ENVELOPE_TEXT["subject"]},
        "time": {"type": "string", "format": "date-time", "description": _ENVELOPE_TEXT["time"]},
        "datacontenttype": {"const": "application/json"},
        "data": _data(kind),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:portalbridge:schema:{type_name}",
        "title": type_name,
        "description": f"{kind.DESCRIPTION} (routing key {kind.routing_key}; generated from "
                       f"engine.domain.events.{kind.__name__}).",
        "type": "object", "required": list(envelope), "properties": envelope,
        "$defs": {"identifier": _IDENTIFIER},
        "examples": [_example(kind)],
    }


def _credential_example(kind: type[MemberCredentialEvent]) -> MemberCredentialEvent:
    extra: dict[str, Any] = {}
    if issubclass(kind, MemberLockedEvent):
        extra = {"mechanism": "time-based", "locked_until": datetime(2026, 1, 2, 9, 35, tzinfo=UTC)}
    return kind(subject="4f2a9c0d1e2b3a4f5e6d7c8b9a0f1e2d",
                occurred_at=datetime(2026, 1, 2, 9, 30, tzinfo=UTC),
                patient_id="9b2f0c7e4d1a4e0f8c3b2a1d0e9f8a7b",
                identifiers=({"value": "12345", "authority": "GHH", "type": "MR"},),
                membership_status="active", reason="time-based lockout after failed sign-ins",
                actor_type="member", actor_id="4f2a9c0d1e2b3a4f5e6d7c8b9a0f1e2d", **extra)


def _example(kind: MemberEventKind) -> dict[str, Any]:
    event = _credential_example(kind) if issubclass(kind, MemberCredentialEvent) else \
        _status_example(kind)
    return {"specversion": "1.0", "id": "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a",
            "source": "urn:portalbridge", "type": f"org.portalbridge.{kind.routing_key}.v1",
            "subject": event.subject, "time": "2026-01-02T09:30:00.000000Z",
            "datacontenttype": "application/json", "data": event.data()}


def _status_example(kind: type[MemberStatusChanged]) -> MemberStatusChanged:
    extra = {"enrollment_method": "automated"} if issubclass(kind, MemberEnrolledEvent) else {}
    event = kind(subject="4f2a9c0d1e2b3a4f5e6d7c8b9a0f1e2d",
                 occurred_at=datetime(2026, 1, 2, 9, 30, tzinfo=UTC),
                 patient_id="9b2f0c7e4d1a4e0f8c3b2a1d0e9f8a7b",
                 identifiers=({"value": "12345", "authority": "GHH", "type": "MR"},),
                 old_status=kind.OLD[0], new_status=kind.NEW[0], enrollment_status="Yes",
                 reason=None if kind.OLD[0] in (None, "pending") else "requested by the member",
                 actor_type="staff", actor_id="workbench-user-17", **extra)
    return event


def render(kind: MemberEventKind) -> str:
    """The schema file's text."""
    return json.dumps(member_schema(kind), indent=2, ensure_ascii=False) + "\n"


def write_all(folder: Path | None = None) -> list[Path]:
    """Write every member event schema into ``folder`` (default: the package's schemas)."""
    target = folder or Path(str(resources.files("engine") / "schemas"))
    written = []
    kinds: list[MemberEventKind] = [*MEMBER_EVENTS, *CREDENTIAL_EVENTS]
    for kind in kinds:
        path = target / f"{kind.routing_key}.json"
        path.write_text(render(kind), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - a developer's command
    for path in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(path)
