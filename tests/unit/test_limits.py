"""Column limits: one source of truth for the tables and the checks, and the command net."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import String

from engine import limits as engine_limits
from engine.commands import ApplyAtomically, MergePatientRecords, RecordMerge, SavePatientResource
from engine.committer import GroupCommitter
from engine.errors import InvalidMessage
from engine.handlers import MessageBus
from engine.limits import check_command
from engine.rules import RoutingRules
from engine.store.tables import (
    audit_log,
    inbound_messages,
    member_sessions,
    members,
    message_journal,
    metadata,
    notifications,
    outbox,
    staff_users,
    subject_sequences,
)
from mpi import limits as mpi_limits
from mpi.model import Demographics, DemographicsUpdate, Identifier, PersonName, RecordKey
from mpi.tables import identifiers, patients, source_records
from tests.fakes import FixedClock, InMemoryUnitOfWork, SequentialIds
from tests.unit.test_handlers import origin, upsert

#: Every limited column and the limit the checks use for it: a new String column must be
#: added here, which is the moment to decide how its values are checked.
COLUMN_LIMITS = {
    (patients, "id"): mpi_limits.RECORD_ID_CHARS,
    (patients, "merged_into"): mpi_limits.RECORD_ID_CHARS,
    (patients, "winner_facility"): mpi_limits.FACILITY_CHARS,
    (source_records, "id"): mpi_limits.RECORD_ID_CHARS,
    (source_records, "patient_id"): mpi_limits.RECORD_ID_CHARS,
    (source_records, "facility"): mpi_limits.FACILITY_CHARS,
    (source_records, "authority"): mpi_limits.AUTHORITY_CHARS,
    (source_records, "mrn"): mpi_limits.IDENTIFIER_VALUE_CHARS,
    (source_records, "family_name"): mpi_limits.FAMILY_NAME_KEY_CHARS,
    (source_records, "birth_date"): mpi_limits.BIRTH_DATE_KEY_CHARS,
    (source_records, "merged_into"): mpi_limits.RECORD_ID_CHARS,
    (identifiers, "record_id"): mpi_limits.RECORD_ID_CHARS,
    (identifiers, "authority"): mpi_limits.AUTHORITY_CHARS,
    (identifiers, "value"): mpi_limits.IDENTIFIER_VALUE_CHARS,
    (identifiers, "type_code"): mpi_limits.IDENTIFIER_TYPE_CHARS,
    (identifiers, "patient_id"): mpi_limits.RECORD_ID_CHARS,
    # The journal's text is cut and cleaned as it is written (engine.store.journal), not refused.
    (message_journal, "channel"): engine_limits.JOURNAL_SHORT_CHARS,
    (message_journal, "sender"): engine_limits.SENDER_CHARS,
    (message_journal, "control_id"): engine_limits.CONTROL_ID_CHARS,
    (message_journal, "message_type"): engine_limits.JOURNAL_TYPE_CHARS,
    (message_journal, "outcome"): engine_limits.JOURNAL_SHORT_CHARS,
    (message_journal, "error_code"): engine_limits.JOURNAL_CODE_CHARS,
    (message_journal, "error_location"): engine_limits.JOURNAL_LOCATION_CHARS,
    (message_journal, "payload_form"): engine_limits.JOURNAL_SHORT_CHARS,
    (inbound_messages, "sender"): engine_limits.SENDER_CHARS,
    (inbound_messages, "control_id"): engine_limits.CONTROL_ID_CHARS,
    (inbound_messages, "channel"): engine_limits.CHANNEL_CHARS,
    (inbound_messages, "message_type"): engine_limits.MESSAGE_TYPE_CHARS,
    (inbound_messages, "outcome"): engine_limits.OUTCOME_CHARS,
    (outbox, "event_id"): engine_limits.EVENT_ID_CHARS,
    (outbox, "routing_key"): engine_limits.ROUTING_KEY_CHARS,
    (outbox, "subject"): engine_limits.SUBJECT_CHARS,
    (subject_sequences, "subject"): engine_limits.SUBJECT_CHARS,
    (outbox, "correlation_id"): engine_limits.CORRELATION_ID_CHARS,
    (outbox, "status"): engine_limits.OUTBOX_STATUS_CHARS,
    (staff_users, "id"): mpi_limits.RECORD_ID_CHARS,
    (staff_users, "name"): engine_limits.STAFF_NAME_CHARS,
    (staff_users, "token_sha256"): engine_limits.TOKEN_DIGEST_CHARS,
    (audit_log, "actor"): engine_limits.AUDIT_ACTOR_CHARS,
    (audit_log, "action"): engine_limits.AUDIT_ACTION_CHARS,
    (audit_log, "outcome"): engine_limits.AUDIT_OUTCOME_CHARS,
    (audit_log, "member_id"): mpi_limits.RECORD_ID_CHARS,
    (audit_log, "patient_id"): mpi_limits.RECORD_ID_CHARS,
    (members, "id"): engine_limits.MEMBER_ID_CHARS,
    (members, "patient_id"): mpi_limits.RECORD_ID_CHARS,
    (members, "enrollment_status"): engine_limits.ENROLLMENT_STATUS_CHARS,
    (members, "membership_status"): engine_limits.MEMBERSHIP_STATUS_CHARS,
    (members, "email"): engine_limits.EMAIL_CHARS,
    (members, "mobile"): engine_limits.MOBILE_CHARS,
    (members, "carrier"): engine_limits.CARRIER_CHARS,
    (members, "communication"): engine_limits.COMMUNICATION_CHARS,
    (members, "locale"): engine_limits.LOCALE_CHARS,
    (members, "mode"): engine_limits.ENROLLMENT_MODE_CHARS,
    (members, "enrolled_by"): engine_limits.ENROLLED_BY_CHARS,
    (members, "token_digest"): engine_limits.TOKEN_DIGEST_CHARS,
    (members, "passphrase_hash"): engine_limits.SECRET_HASH_CHARS,
    (members, "username"): engine_limits.USERNAME_CHARS,
    (members, "username_key"): engine_limits.USERNAME_CHARS,
    (members, "password_hash"): engine_limits.SECRET_HASH_CHARS,
    (members, "reset_digest"): engine_limits.TOKEN_DIGEST_CHARS,
    (members, "otp_digest"): engine_limits.TOKEN_DIGEST_CHARS,
    (members, "otp_code_mac"): engine_limits.TOKEN_DIGEST_CHARS,
    (member_sessions, "digest"): engine_limits.TOKEN_DIGEST_CHARS,
    (member_sessions, "member_id"): engine_limits.MEMBER_ID_CHARS,
    (notifications, "id"): engine_limits.NOTIFICATION_ID_CHARS,
    (notifications, "member_id"): engine_limits.MEMBER_ID_CHARS,
    (notifications, "kind"): engine_limits.NOTIFICATION_KIND_CHARS,
    (notifications, "channel"): engine_limits.NOTIFICATION_CHANNEL_CHARS,
    (notifications, "recipient"): engine_limits.EMAIL_CHARS,
    (notifications, "carrier"): engine_limits.CARRIER_CHARS,
    (notifications, "locale"): engine_limits.LOCALE_CHARS,
    (notifications, "status"): engine_limits.NOTIFICATION_STATUS_CHARS,
}


def test_every_limited_column_has_its_limit_from_the_limits_modules() -> None:
    found = {(table, column.name): column.type.length for table in metadata.sorted_tables
             for column in table.columns
             if isinstance(column.type, String) and column.type.length is not None}
    assert {(t.name, c) for t, c in found} == {(t.name, c) for t, c in COLUMN_LIMITS}
    for (table, column), limit in COLUMN_LIMITS.items():
        assert found[(table, column)] == limit, f"{table.name}.{column}"


def test_derived_values_fit_where_they_are_copied() -> None:
    # An event's correlation id is the message's control id; an identifier can be a key.
    assert engine_limits.CORRELATION_ID_CHARS >= engine_limits.CONTROL_ID_CHARS
    assert engine_limits.SUBJECT_CHARS >= mpi_limits.RECORD_ID_CHARS
    assert len("Patient.create") <= engine_limits.MESSAGE_TYPE_CHARS


def refusal(command: object) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as caught:
        check_command(command)  # type: ignore[arg-type]
    assert caught.value.hl7_error_code == "102"
    return caught.value


def test_a_command_that_fits_passes() -> None:
    check_command(upsert("c1", names=(PersonName("DOE", ("ANN",)),)))


@pytest.mark.parametrize(("change", "location"), [
    (lambda c: dataclasses.replace(c, origin=origin("x" * 201)), "origin.control_id"),
    (lambda c: dataclasses.replace(c, origin=dataclasses.replace(c.origin, sender="s" * 201)),
     "origin.sender"),
    (lambda c: dataclasses.replace(c, key=RecordKey("NORTH", "NGH", "9" * 201)), "key.mrn"),
    (lambda c: dataclasses.replace(c, key=RecordKey("NORTH", "A" * 201, "1")), "key.authority"),
])
def test_over_long_values_are_refused_by_the_field_of_the_command(change: object,
                                                                   location: str) -> None:
    error = refusal(change(upsert("c1")))  # type: ignore[operator]
    assert error.location == location
    assert "at most" in error.reason


def test_identifiers_and_text_anywhere_in_the_demographics_are_checked() -> None:
    long_type = upsert("c1", identifiers=(Identifier("1", "NGH", "MR"), Identifier("2", "NGH", "T" * 17)))
    assert refusal(long_type).location == "update.identifiers[1].type"
    nul = upsert("c2", names=(PersonName("DOE", ("A\x00NN",)),))
    assert refusal(nul).location == "update.names[0].given[0]"
    surrogate = upsert("c3", mothers_maiden_name="SM\ud800ITH")
    error = refusal(surrogate)
    assert error.location == "update.mothers_maiden_name" and "surrogate" in error.reason


def test_a_literal_backslash_u0000_is_not_a_nul() -> None:
    check_command(upsert("c1", names=(PersonName("DOE\\u0000", ()),)))


def test_nested_commands_are_named_by_their_path() -> None:
    resource = SavePatientResource(origin=origin("r1"), record_id="r" * 65,
                                   key=RecordKey("NORTH", "NGH", "1"), demographics=Demographics())
    assert refusal(resource).location == "record_id"
    bundle = ApplyAtomically(origin=origin("b1"), commands=(upsert("p1"), resource))
    assert refusal(bundle).location == "commands[1].record_id"
    merge = MergePatientRecords(origin=origin("m1"), merges=(RecordMerge(
        survivor=RecordKey("NORTH", "NGH", "1"), prior=RecordKey("NORTH", "NGH", "2\x00"),
        update=DemographicsUpdate(Demographics(), frozenset())),))
    assert refusal(merge).location == "merges[0].prior.mrn"


def test_reasons_never_quote_the_value() -> None:
    marker = "ZQXMARKER"
    for value in (marker * 30, f"{marker}\x00", f"{marker}\ud800"):
        reason = mpi_limits.value_problem(value, 200)
        assert reason is not None and marker not in reason


def test_the_committer_refuses_an_unstorable_command_alone(rules: RoutingRules) -> None:
    uow = InMemoryUnitOfWork()
    committer = GroupCommitter(MessageBus(rules, FixedClock(), SequentialIds()), lambda _c: uow)
    committer.start()

    async def main() -> list[object]:
        return await asyncio.gather(committer.apply(upsert("ok1", mrn="A")),
                                    committer.apply(upsert("x" * 201, mrn="B")),
                                    committer.apply(upsert("ok2", mrn="C")), return_exceptions=True)

    try:
        first, bad, second = asyncio.run(main())
    finally:
        committer.stop()
    assert isinstance(bad, InvalidMessage) and bad.location == "origin.control_id"
    assert not isinstance(first, BaseException) and not isinstance(second, BaseException)
    assert committer.stats.messages == 2
