"""Command handlers: plain functions in an explicit table, run inside one unit of work.

``MessageBus.handle`` adds what every command needs: the idempotency check on
(sender, control id), the translation of index errors into the engine's tree, and the
``mpi.changed`` events written to the outbox in the same transaction as the change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from engine.commands import (
    ApplyAtomically,
    ChangePatientIdentifier,
    Command,
    MergePatientRecords,
    MessageOrigin,
    Outcome,
    ResourceState,
    SavePatientResource,
    UpsertPatientRecord,
)
from engine.domain.clock import Clock, IdSource
from engine.domain.events import MpiRecordChanged
from engine.enrollment_requests import EnrollmentTrigger
from engine.errors import (
    Conflict,
    EngineError,
    InvalidMessage,
    NotFound,
    PreconditionFailed,
    RejectedMessage,
    in_occurrence,
)
from engine.member_commands import MemberCommand
from engine.member_handlers import MemberHandlers
from engine.rules import RoutingRules
from engine.uow import OutboxMessage, UnitOfWork
from mpi.errors import (
    AmbiguousMatch,
    IdentifierInUse,
    InvalidIndexOperation,
    MpiError,
    RecordExists,
    SeveralRecords,
    UnknownRecord,
    VersionConflict,
)
from mpi.index import PatientChange, PatientIndex
from mpi.model import Identifier, RecordKey, SourceRecord

__all__ = ["HANDLERS", "MessageBus"]


@dataclass(frozen=True, slots=True)
class _Context:
    index: PatientIndex
    uow: UnitOfWork


@dataclass(frozen=True, slots=True)
class Applied:
    """What a handler did: the patients whose best demographics moved, and the record
    a resource-style write left behind."""

    changes: list[PatientChange]
    resource: ResourceState | None = None


Handler = Callable[[Any, _Context], Applied]


def upsert_patient_record(command: UpsertPatientRecord, ctx: _Context) -> Applied:
    return Applied(ctx.index.upsert(command.key, command.update))


def merge_patient_records(command: MergePatientRecords, ctx: _Context) -> Applied:
    changes: list[PatientChange] = []
    for merge in command.merges:
        with _in_group(merge.group):
            changes.extend(ctx.index.merge(merge.survivor, merge.prior, merge.update,
                                           merge.prior_identifiers))
    return Applied(_last_per_patient(changes))


def change_patient_identifier(command: ChangePatientIdentifier, ctx: _Context) -> Applied:
    changes: list[PatientChange] = []
    for change in command.changes:
        with _in_group(change.group):
            changes.extend(ctx.index.change_identifier(change.old, change.new, change.update))
    return Applied(_last_per_patient(changes))


@contextmanager
def _in_group(group: int) -> Iterator[None]:
    """An index refusal about the n-th PID/MRG group of a message, located in that group."""
    try:
        yield
    except MpiError as exc:
        raise in_occurrence(_MPI_ERRORS[type(exc)](exc.reason), group) from exc


def save_patient_resource(command: SavePatientResource, ctx: _Context) -> Applied:
    existing = _conditional_match(command, ctx.index)
    if existing is not None:
        return Applied([], ResourceState(existing.id, existing.version, created=False, changed=False,
                                         last_updated=existing.updated_at))
    result = ctx.index.put(command.record_id, command.key, command.demographics,
                           expected_version=command.expected_version)
    changes = list(result.changes)
    for number, link in enumerate(command.links):
        prior, survivor = ((result.record.id, link.other_record_id) if link.kind == "replaced-by"
                           else (link.other_record_id, result.record.id))
        try:
            changes.extend(ctx.index.merge_records(prior, survivor))
        except (UnknownRecord, InvalidIndexOperation) as exc:
            raise InvalidMessage(exc.reason, f"Patient.link[{number}].other", code="103") from exc
    record = result.record
    return Applied(_last_per_patient(changes),
                   ResourceState(record.id, record.version, result.created, result.changed,
                                 record.updated_at))


def _conditional_match(command: SavePatientResource, index: PatientIndex) -> SourceRecord | None:
    if not command.if_none_exist:
        return None
    matches: set[str] | None = None
    records: dict[str, SourceRecord] = {}
    for identifier in command.if_none_exist:
        found = index.active_records_with(identifier)
        records.update((r.id, r) for r in found)
        ids = {r.id for r in found}
        matches = ids if matches is None else matches & ids
    if not matches:
        return None
    if len(matches) > 1:
        raise PreconditionFailed(f"the condition matches {len(matches)} patients", "If-None-Exist")
    return records[matches.pop()]


HANDLERS: dict[type, Handler] = {
    UpsertPatientRecord: upsert_patient_record,
    MergePatientRecords: merge_patient_records,
    ChangePatientIdentifier: change_patient_identifier,
    SavePatientResource: save_patient_resource,
}


def _last_per_patient(changes: list[PatientChange]) -> list[PatientChange]:
    """Several groups of one message may touch one patient: its single event carries every
    field that moved, from the first old value to the last new one."""
    combined: dict[str, PatientChange] = {}
    for change in changes:
        first = combined.get(change.patient_id)
        if first is None:
            combined[change.patient_id] = change
            continue
        fields = dict(first.changed)
        for name, (old, new) in change.changed.items():
            fields[name] = (fields[name][0] if name in fields else old, new)
        fields = {name: (old, new) for name, (old, new) in fields.items() if old != new}
        combined[change.patient_id] = replace(
            change, changed=fields, created=first.created or change.created,
            merged_from=tuple(dict.fromkeys((*first.merged_from, *change.merged_from))))
    return list(combined.values())


_MPI_ERRORS: dict[type[MpiError], Callable[[str], RejectedMessage]] = {
    UnknownRecord: lambda reason: NotFound(reason, "MRG-1"),
    IdentifierInUse: lambda reason: Conflict(reason, "PID-3"),
    SeveralRecords: lambda reason: Conflict(reason, "PID-3"),
    InvalidIndexOperation: lambda reason: InvalidMessage(reason, "MRG-1", code="102"),
    RecordExists: lambda reason: Conflict(reason, "Patient.identifier"),
    VersionConflict: lambda reason: PreconditionFailed(reason, "If-Match"),
    AmbiguousMatch: lambda reason: PreconditionFailed(reason, "If-None-Exist"),
}


class MessageBus:
    """Runs commands against a unit of work, with the services handlers need injected once."""

    def __init__(self, rules: RoutingRules, clock: Clock, ids: IdSource,
                 members: MemberHandlers | None = None) -> None:
        self._rules = rules
        self._clock = clock
        self._ids = ids
        self._members = members
        self._publish_mpi_changed = "mpi.changed" in rules.events.publish
        self._members_only = rules.events.mpi_changed_for == "members"
        self._enrollment = EnrollmentTrigger(rules, ids)

    def prefetch(self, commands: Iterable[Command], uow: UnitOfWork) -> None:
        """Load what a batch of commands will read, in as few queries as the store can."""
        commands = list(commands)
        member_commands = [c for c in commands if isinstance(c, _MEMBER_COMMANDS)]
        uow.inbox.prefetch(c.origin for c in (*_flatten(commands), *member_commands))
        keys = list(_keys_of(commands))
        members_wanted = bool(keys) and (self._members_only or _enrolls(commands))
        if members_wanted:
            uow.members.prefetch_patients_with_index()  # on PostgreSQL: in the same round trip
        uow.mpi.prefetch(keys, _identifiers_of(commands))
        if member_commands and self._members is not None:
            self._members.prefetch(member_commands, uow)
        if members_wanted:
            # Which of these patients are members decides their mpi.changed events.
            uow.members.prefetch_patients(r.patient_id for k in keys if (r := uow.mpi.get_record(k)))

    def handle(self, command: Command, uow: UnitOfWork) -> Outcome:
        """Apply ``command`` in ``uow`` (not committed here); raise ``RejectedMessage`` on refusal."""
        if uow.inbox.seen(command.origin):
            if isinstance(command, _MEMBER_COMMANDS) and self._members is not None:
                return self._members.duplicate(command, uow)
            return Outcome("duplicate", detail="already committed; not applied again")
        if isinstance(command, _MEMBER_COMMANDS):
            if self._members is None:
                raise InvalidMessage("membership is not configured in this process")
            outcome = self._members.handle(command, uow)
        elif isinstance(command, ApplyAtomically):
            # Parts share the unit of work: if one raises, the caller rolls all of them back.
            parts = tuple(self._handle_part(part, uow) for part in command.commands)
            outcome = Outcome("applied", events=sum(p.events for p in parts), parts=parts)
        else:
            outcome = self._apply(command, uow)
        uow.inbox.record(command.origin, outcome, self._clock.now())
        return outcome

    def _handle_part(self, part: Command, uow: UnitOfWork) -> Outcome:
        try:
            return self.handle(part, uow)
        except EngineError as exc:
            # Name the failing part, so a FHIR transaction can point at the entry at fault.
            exc.add_note(f"in part {part.origin.control_id}")
            raise

    def _apply(self, command: Command, uow: UnitOfWork) -> Outcome:
        index = PatientIndex(uow.mpi, self._rules.tier_of, self._ids.new_id, self._clock.now)
        try:
            applied = HANDLERS[type(command)](command, _Context(index, uow))
        except MpiError as exc:
            raise _MPI_ERRORS[type(exc)](exc.reason) from exc
        changes = applied.changes
        _follow_merges(changes, uow)
        events = self._record_events(changes, command.origin, uow)
        if isinstance(command, UpsertPatientRecord | SavePatientResource) and command.enroll:
            created = applied.resource is None or applied.resource.created
            if created:
                self._enrollment.request(command, command.enroll, uow)
        return Outcome("applied", tuple(c.patient_id for c in changes), events,
                       changes=tuple(changes), resource=applied.resource)

    def _record_events(self, changes: list[PatientChange], origin: MessageOrigin,
                       uow: UnitOfWork) -> int:
        if not self._publish_mpi_changed:
            return 0
        if self._members_only:  # the specification's "a change to a member's MPI record"
            for change in changes:
                if change.created:  # a new patient has no stored member: no read for it
                    uow.members.patient_created(change.patient_id)
            changes = [c for c in changes if uow.members.by_patient(c.patient_id) is not None]
        for change in changes:
            event = self._mpi_changed(change, origin)
            uow.outbox.add(OutboxMessage(
                event_id=self._ids.new_uuid(), routing_key=event.routing_key,
                subject=event.subject, correlation_id=event.correlation_id,
                occurred_at=event.occurred_at, data=event.data()))
        return len(changes)

    def _mpi_changed(self, change: PatientChange, origin: MessageOrigin) -> MpiRecordChanged:
        return MpiRecordChanged(
            subject=change.patient_id, occurred_at=self._clock.now(),
            correlation_id=origin.control_id,
            identifiers=tuple(i.to_dict() for i in change.identifiers), changes=change.changed,
            winner_facility=change.winner_facility, winner_tier=change.winner_tier,
            created=change.created, merged_into=change.merged_into, merged_from=change.merged_from,
            source={"channel": origin.channel, "sender": origin.sender,
                    "message_type": origin.message_type, "control_id": origin.control_id,
                    "facility": origin.facility})


_MEMBER_COMMANDS = MemberCommand.__args__


def _enrolls(commands: list[Command]) -> bool:
    return any(getattr(c, "enroll", None) is not None for c in commands)


def _follow_merges(changes: list[PatientChange], uow: UnitOfWork) -> None:
    """A member whose patient was merged away follows the survivor, unless the survivor is a
    member too (then both stay, and the Workbench sees two members of one person)."""
    for change in changes:
        for retired in change.merged_from:
            member = uow.members.by_patient(retired)
            if member is not None and uow.members.by_patient(change.patient_id) is None:
                member.patient_id = change.patient_id
                uow.members.changed(member)


def _flatten(commands: Iterable[Command]) -> Iterator[Command]:
    for command in commands:
        if isinstance(command, ApplyAtomically):
            yield from _flatten(command.commands)
        elif not isinstance(command, _MEMBER_COMMANDS):
            yield command


def _keys_of(commands: list[Command]) -> Iterator[RecordKey]:
    for command in _flatten(commands):
        if isinstance(command, UpsertPatientRecord | SavePatientResource):
            yield command.key
        elif isinstance(command, MergePatientRecords):
            for merge in command.merges:
                yield from (merge.survivor, merge.prior)
        elif isinstance(command, ChangePatientIdentifier):
            for change in command.changes:
                yield from (change.old, change.new)


def _identifiers_of(commands: list[Command]) -> Iterator[Identifier]:
    for command in _flatten(commands):
        if isinstance(command, UpsertPatientRecord):
            yield from command.update.values.identifiers
        elif isinstance(command, SavePatientResource):
            yield from (*command.demographics.identifiers, *command.if_none_exist)
        elif isinstance(command, MergePatientRecords):
            for merge in command.merges:
                yield from merge.update.values.identifiers
        elif isinstance(command, ChangePatientIdentifier):
            for change in command.changes:
                yield from change.update.values.identifiers
