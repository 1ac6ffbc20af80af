"""What the store can hold, checked on every command before the database sees it.

The engine's own columns (inbox and outbox) are sized here, the index's in ``mpi.limits``;
the tables use these numbers and so do the checks. The adapters check the values they read
first, naming the field in their own terms (``PID-3(2).1``, ``Patient.identifier[0].value``);
``check_command`` is the net under every input, present and future: whatever reaches the
group committer or a dry run is checked once more and refused with ``InvalidMessage`` (HL7
code 102) naming the command's own field, so no value the database would refuse reaches it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.commands import (
    ApplyAtomically,
    ChangePatientIdentifier,
    Command,
    MergePatientRecords,
    MessageOrigin,
    SavePatientResource,
    UpsertPatientRecord,
)
from engine.errors import InvalidMessage
from mpi.limits import (
    AUTHORITY_CHARS,
    FACILITY_CHARS,
    IDENTIFIER_TYPE_CHARS,
    IDENTIFIER_VALUE_CHARS,
    RECORD_ID_CHARS,
    first_unstorable,
    value_problem,
)
from mpi.model import Demographics, Identifier, RecordKey

__all__ = [
    "AUDIT_ACTION_CHARS",
    "AUDIT_ACTOR_CHARS",
    "AUDIT_OUTCOME_CHARS",
    "AUDIT_REASON_CHARS",
    "CARRIER_CHARS",
    "CHANNEL_CHARS",
    "COMMUNICATION_CHARS",
    "CONTROL_ID_CHARS",
    "CORRELATION_ID_CHARS",
    "EMAIL_CHARS",
    "ENROLLED_BY_CHARS",
    "ENROLLMENT_MODE_CHARS",
    "ENROLLMENT_STATUS_CHARS",
    "EVENT_ID_CHARS",
    "JOURNAL_CODE_CHARS",
    "JOURNAL_LOCATION_CHARS",
    "JOURNAL_SHORT_CHARS",
    "JOURNAL_TYPE_CHARS",
    "LOCALE_CHARS",
    "MEMBERSHIP_STATUS_CHARS",
    "MEMBER_ID_CHARS",
    "MESSAGE_TYPE_CHARS",
    "MOBILE_CHARS",
    "NOTIFICATION_CHANNEL_CHARS",
    "NOTIFICATION_ID_CHARS",
    "NOTIFICATION_KIND_CHARS",
    "NOTIFICATION_STATUS_CHARS",
    "OUTBOX_STATUS_CHARS",
    "OUTCOME_CHARS",
    "ROUTING_KEY_CHARS",
    "SECRET_HASH_CHARS",
    "SENDER_CHARS",
    "STAFF_NAME_CHARS",
    "SUBJECT_CHARS",
    "TOKEN_DIGEST_CHARS",
    "USERNAME_CHARS",
    "check_command",
]

#: The idempotency scope of a message: ``MSH-3.1^MSH-4.1``, or ``fhir:<client>``.
SENDER_CHARS = 200
#: MSH-10, or the request id of an HTTP write.
CONTROL_ID_CHARS = 200
#: ``ADT^A08``, ``Patient.create``.
MESSAGE_TYPE_CHARS = 32
CHANNEL_CHARS = 16
OUTCOME_CHARS = 16
#: Outbox rows: a UUID, a routing key, the subject (a patient or member id).
EVENT_ID_CHARS = 36
ROUTING_KEY_CHARS = 64
SUBJECT_CHARS = 64
#: An event's correlation id is the control id of the message that caused it.
CORRELATION_ID_CHARS = CONTROL_ID_CHARS
OUTBOX_STATUS_CHARS = 8
#: Staff and the audit log, checked where their values are made (``engine.staff``,
#: ``engine.audit``): a name, a token's SHA-256 in hex, an audit entry's parts.
STAFF_NAME_CHARS = 100
TOKEN_DIGEST_CHARS = 64
AUDIT_ACTOR_CHARS = 200
AUDIT_ACTION_CHARS = 64
AUDIT_OUTCOME_CHARS = 16
AUDIT_REASON_CHARS = 2000  # a Text column: the limit is the audit log's own rule
#: The message journal's columns in the clear (sender and control id as the inbox's). A value
#: longer, or holding what no database stores, is cut or cleaned when the entry is written
#: (``engine.store.journal``), never refused: the journal must not fail a message.
JOURNAL_SHORT_CHARS = 8  # channel, outcome (AA, AE, AR, an HTTP status), payload form
JOURNAL_TYPE_CHARS = 64  # "ADT^A08", "POST Bundle", MSH-9 as written when unreadable
JOURNAL_CODE_CHARS = 32  # HL7 table 0357 code, or the FHIR issue code
JOURNAL_LOCATION_CHARS = 64  # "PID-7", "Patient.birthDate"
#: Members and their notifications, checked where their values come in (the request models
#: of ``engine.enrollment_requests`` and the HTTP bodies) and made (ids, statuses, hashes).
MEMBER_ID_CHARS = 32
ENROLLMENT_STATUS_CHARS = 3  # No / Yes
MEMBERSHIP_STATUS_CHARS = 16  # pending, active, inactive, inactive/minor
EMAIL_CHARS = 254
MOBILE_CHARS = 32
CARRIER_CHARS = 64
COMMUNICATION_CHARS = 16
LOCALE_CHARS = 16
ENROLLMENT_MODE_CHARS = 16
ENROLLED_BY_CHARS = 128
SECRET_HASH_CHARS = 512  # an encoded password or passphrase hash (algorithm, parameters, salt)
USERNAME_CHARS = 150
NOTIFICATION_ID_CHARS = 36
NOTIFICATION_KIND_CHARS = 32
NOTIFICATION_CHANNEL_CHARS = 8
NOTIFICATION_STATUS_CHARS = 8

Problem = tuple[str, str]  # (location, reason)


def check_command(command: Command) -> None:
    """Raise ``InvalidMessage`` (102) for the first value of ``command`` the store cannot hold."""
    problem = next(_problems(command, ""), None)
    if problem is not None:
        location, reason = problem
        raise InvalidMessage(f"{location} {reason}", location, code="102")


def _problems(command: Command, at: str) -> Iterator[Problem]:
    yield from _origin(command.origin, f"{at}origin")
    if isinstance(command, UpsertPatientRecord):
        yield from _key(command.key, f"{at}key")
        yield from _demographics(command.update.values, f"{at}update")
    elif isinstance(command, MergePatientRecords):
        for n, merge in enumerate(command.merges):
            yield from _key(merge.survivor, f"{at}merges[{n}].survivor")
            yield from _key(merge.prior, f"{at}merges[{n}].prior")
            yield from _demographics(merge.update.values, f"{at}merges[{n}].update")
    elif isinstance(command, ChangePatientIdentifier):
        for n, change in enumerate(command.changes):
            yield from _key(change.old, f"{at}changes[{n}].old")
            yield from _key(change.new, f"{at}changes[{n}].new")
            yield from _demographics(change.update.values, f"{at}changes[{n}].update")
    elif isinstance(command, SavePatientResource):
        yield from _resource(command, at)
    elif isinstance(command, ApplyAtomically):
        for n, part in enumerate(command.commands):
            yield from _problems(part, f"{at}commands[{n}].")


def _resource(command: SavePatientResource, at: str) -> Iterator[Problem]:
    if command.record_id is not None:
        yield from _value(command.record_id, RECORD_ID_CHARS, f"{at}record_id")
    yield from _key(command.key, f"{at}key")
    yield from _demographics(command.demographics, f"{at}demographics")
    for n, identifier in enumerate(command.if_none_exist):
        yield from _identifier(identifier, f"{at}if_none_exist[{n}]")
    for n, link in enumerate(command.links):
        yield from _value(link.other_record_id, RECORD_ID_CHARS, f"{at}links[{n}].other_record_id")


def _origin(origin: MessageOrigin, at: str) -> Iterator[Problem]:
    for name, limit in (("sender", SENDER_CHARS), ("control_id", CONTROL_ID_CHARS),
                        ("message_type", MESSAGE_TYPE_CHARS), ("channel", CHANNEL_CHARS),
                        ("facility", FACILITY_CHARS)):
        yield from _value(getattr(origin, name), limit, f"{at}.{name}")


def _key(key: RecordKey, at: str) -> Iterator[Problem]:
    yield from _value(key.facility, FACILITY_CHARS, f"{at}.facility")
    yield from _value(key.authority, AUTHORITY_CHARS, f"{at}.authority")
    yield from _value(key.mrn, IDENTIFIER_VALUE_CHARS, f"{at}.mrn")


def _identifier(identifier: Identifier, at: str) -> Iterator[Problem]:
    yield from _value(identifier.value, IDENTIFIER_VALUE_CHARS, f"{at}.value")
    yield from _value(identifier.authority, AUTHORITY_CHARS, f"{at}.authority")
    yield from _value(identifier.type_code, IDENTIFIER_TYPE_CHARS, f"{at}.type")


def _demographics(values: Demographics, at: str) -> Iterator[Problem]:
    for n, identifier in enumerate(values.identifiers):
        yield from _identifier(identifier, f"{at}.identifiers[{n}]")
    if _may_hold_unstorable(values):
        yield from _unstorable_text(values.to_dict(), at)


def _may_hold_unstorable(values: Demographics) -> bool:
    """Cheap first look: the JSON the store writes anyway cannot even be made with a lone
    surrogate, and shows a NUL as an escape. A false alarm only costs the walk below."""
    try:
        return "\\u0000" in values.json_text
    except UnicodeEncodeError:  # a lone surrogate
        return True


def _unstorable_text(node: Any, at: str) -> Iterator[Problem]:
    """Every string of a JSON-like tree, walked without recursion."""
    pending: list[tuple[str, Any]] = [(at, node)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, str):
            if first_unstorable(value) is not None:
                yield from _value(value, None, where)
        elif isinstance(value, dict):
            pending.extend((f"{where}.{key}", item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            pending.extend((f"{where}[{n}]", item) for n, item in reversed(list(enumerate(value))))


def _value(value: str, limit: int | None, location: str) -> Iterator[Problem]:
    reason = value_problem(value, limit)
    if reason is not None:
        yield location, reason
