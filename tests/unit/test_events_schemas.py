"""Status events as CloudEvents: attributes, AMQP properties, and the JSON Schema of each type."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from engine.broker import SEQUENCE_HEADER
from engine.domain.events import (
    CREDENTIAL_EVENTS,
    MEMBER_EVENTS,
    MemberActivatedEvent,
    MemberDeactivatedEvent,
    MemberEnrolledEvent,
    MemberLockedEvent,
    MemberPasswordChangedEvent,
    MemberReactivatedEvent,
    MemberStatusChanged,
    MemberUnlockedEvent,
    MpiRecordChanged,
)
from engine.event_schemas import render
from engine.rules import CREDENTIAL_EVENT_TYPES, EVENT_TYPES
from outbound.ports import OutboxRow
from outbound.status_events import CONTENT_TYPE, event_type, to_cloudevent, to_message

ALL_TYPES = (*EVENT_TYPES, *CREDENTIAL_EVENT_TYPES)

T0 = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def schema(routing_key: str) -> Draft202012Validator:
    text = (resources.files("engine") / "schemas" / f"{routing_key}.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text), format_checker=Draft202012Validator.FORMAT_CHECKER)


def mpi_changed_data() -> dict[str, Any]:
    return MpiRecordChanged(
        subject="pat-1", occurred_at=T0, correlation_id="MSG1",
        identifiers=({"value": "123", "authority": "GHH", "type": "MR"},),
        changes={"names": ([], [{"family": "DOE", "given": ["ANN"]}]), "birth_date": ("", "1980-01-02")},
        winner_facility="GHH", winner_tier=1, created=True, merged_into=None, merged_from=(),
        source={"channel": "hl7", "sender": "EMR^GHH", "message_type": "ADT^A04",
                "control_id": "MSG1", "facility": "GHH"}).data()


def member_data(kind: type[MemberStatusChanged], **extra: Any) -> dict[str, Any]:
    """``data`` exactly as the membership handlers emit it (engine.domain.events)."""
    return kind(subject="m-1", occurred_at=T0, patient_id="pat-1",
                identifiers=({"value": "123", "authority": "GHH", "type": "MR"},),
                old_status=kind.OLD[0], new_status=kind.NEW[0], enrollment_status="Yes",
                reason=None, actor_type="staff", actor_id="u-7", **extra).data()


def credential_data(kind: type[MemberPasswordChangedEvent | MemberLockedEvent | MemberUnlockedEvent],
                    **extra: Any) -> dict[str, Any]:
    return kind(subject="m-1", occurred_at=T0, patient_id="pat-1", identifiers=(),
                membership_status="active", reason="password reset", actor_type="member",
                actor_id="m-1", **extra).data()


SAMPLES = {
    "mpi.changed": mpi_changed_data(),
    "member.enrolled": member_data(MemberEnrolledEvent, enrollment_method="point_of_care"),
    "member.activated": member_data(MemberActivatedEvent),
    "member.deactivated": member_data(MemberDeactivatedEvent),
    "member.reactivated": member_data(MemberReactivatedEvent),
    "member.password_changed": credential_data(MemberPasswordChangedEvent),
    "member.locked": credential_data(MemberLockedEvent, mechanism="successive-failure",
                                     locked_until=None),
    "member.unlocked": credential_data(MemberUnlockedEvent),
}


def test_member_schema_files_are_the_ones_generated_from_the_code() -> None:
    folder = resources.files("engine") / "schemas"
    for kind in (*MEMBER_EVENTS, *CREDENTIAL_EVENTS):
        assert (folder / f"{kind.routing_key}.json").read_text("utf-8") == render(kind), (
            "run `python -m engine.event_schemas` to regenerate")


def outbox_row(routing_key: str, data: dict[str, Any]) -> OutboxRow:
    return OutboxRow(id=7, event_id="6f1c1a52-0000-4000-8000-000000000007",
                     routing_key=routing_key, subject=data.get("member_id") or data["patient_id"],
                     sequence=3, correlation_id="MSG1", occurred_at=T0,
                     data=json.dumps(data, separators=(",", ":")))


def test_every_event_type_has_a_valid_schema_with_valid_examples() -> None:
    folder = resources.files("engine") / "schemas"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))
    assert names == sorted(f"{t}.json" for t in ALL_TYPES)
    for routing_key in ALL_TYPES:
        validator = schema(routing_key)
        Draft202012Validator.check_schema(validator.schema)
        for example in validator.schema["examples"]:
            validator.validate(example)


@pytest.mark.parametrize("routing_key", ALL_TYPES)
def test_published_events_of_every_type_validate_against_their_schema(routing_key: str) -> None:
    event = to_cloudevent(outbox_row(routing_key, SAMPLES[routing_key]), "urn:portalbridge")
    schema(routing_key).validate(event)
    assert event["type"] == f"org.portalbridge.{routing_key}.v1" == event_type(routing_key)
    assert event["time"] == "2026-03-04T05:06:07.890123Z"
    assert event["data"] == SAMPLES[routing_key]


def test_the_schema_refuses_an_event_of_another_shape() -> None:
    event = to_cloudevent(outbox_row("member.activated", SAMPLES["member.activated"]), "urn:x")
    event["data"]["new_status"] = "deactivated"
    with pytest.raises(ValidationError):
        schema("member.activated").validate(event)
    del event["subject"]
    with pytest.raises(ValidationError):
        schema("member.activated").validate(event)


def test_amqp_properties_carry_ids_sequence_and_content_type() -> None:
    message = to_message(outbox_row("mpi.changed", SAMPLES["mpi.changed"]), "urn:portalbridge")
    assert message.message_id == "6f1c1a52-0000-4000-8000-000000000007"
    assert message.correlation_id == "MSG1"
    assert message.headers == {SEQUENCE_HEADER: 3}
    assert message.content_type == CONTENT_TYPE == "application/cloudevents+json; charset=utf-8"
    body = json.loads(message.body)
    assert body["id"] == message.message_id and body["source"] == "urn:portalbridge"
    assert body["specversion"] == "1.0" and body["datacontenttype"] == "application/json"
