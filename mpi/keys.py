"""Which of a message's identifiers keys a facility's source record: one rule, whatever order.

A sender may list several identifiers (PID-3 repeats, a FHIR Patient has many), some without
a type, several of type MR. Taking the first would make the same patient, sent with its
identifiers in another order, a second source record. The rule here never looks at order:

1. only identifiers that can link patients count (an authority, not an SSN), and among
   them those of a patient-record type (MR, MRN, PI, PT, PN) or of no type; one of another
   type (an account, visit, facility or licence number, ...) only when there is no such one;
2. by authority: the facility's own assigning authority first, then the facility's
   ``authority_preference`` from routing.yaml in its order, then any other authority;
3. by type: MR, MRN, PI, PT, PN, then untyped, then any other type;
4. then by authority and value, alphabetically, so that ties still have one answer (an
   analyst who wants another choice lists the authority in ``authority_preference``).

The rule chooses the key of a *new* record only: an existing record of the facility found
under any of the identifiers is updated under its own key (``record_named``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mpi.errors import SeveralRecords
from mpi.model import Identifier, RecordKey, SourceRecord
from mpi.repository import MpiRepository

__all__ = ["KEY_TYPES", "record_key_identifier", "record_named", "records_under"]

#: Identifier types (HL7 table 0203) that name a patient's record, best first.
KEY_TYPES = ("MR", "MRN", "PI", "PT", "PN")


def record_key_identifier(identifiers: Iterable[Identifier],
                          authority_order: Sequence[str]) -> Identifier | None:
    """The identifier a new record is keyed by, or None when none can key one.

    ``authority_order`` lists the facility's authorities, most preferred first (its own
    assigning authority, then its preference list); names compare without regard to case.
    """
    order = {name.upper(): rank for rank, name in reversed(list(enumerate(authority_order)))}
    candidates = [i for i in identifiers if i.links_patients]
    if not candidates:
        return None
    return min(candidates, key=lambda i: (
        _type_rank(i.type_code) > len(KEY_TYPES),
        order.get(i.authority.upper(), len(order)),
        _type_rank(i.type_code),
        i.authority, i.value))


def _type_rank(type_code: str) -> int:
    if type_code in KEY_TYPES:
        return KEY_TYPES.index(type_code)
    return len(KEY_TYPES) + (0 if not type_code else 1)


def record_named(repo: MpiRepository, key: RecordKey,
                 identifiers: tuple[Identifier, ...]) -> SourceRecord | None:
    """The facility's record under ``key`` or under any other of the sent identifiers.

    The key only decides where a *new* record goes: a record the facility already has
    under another of the identifiers is the one meant, whatever order they came in.
    Records merged away count as their survivor; two records left are ``SeveralRecords``.
    """
    found = records_under(repo, key, identifiers)
    if len(found) <= 1:
        return next(iter(found), None)
    survivors = {s.id: s for s in (_survivor_of(repo, r) for r in found)}
    if len(survivors) == 1:
        return next(iter(survivors.values()))
    named = ", ".join(f"{r.key.mrn} of {r.key.authority} (record {r.id})"
                      for r in sorted(survivors.values(), key=lambda r: r.id))
    raise SeveralRecords(f"the identifiers sent name {len(survivors)} different records of "
                         f"facility {key.facility}: {named}; which one is meant cannot be told")


def records_under(repo: MpiRepository, key: RecordKey,
                  identifiers: tuple[Identifier, ...]) -> list[SourceRecord]:
    """The facility's records keyed by ``key`` or by one of ``identifiers``, distinct."""
    found: dict[str, SourceRecord] = {}
    direct = repo.get_record(key)
    if direct is not None:
        found[direct.id] = direct
    for identifier in identifiers:
        other = RecordKey(key.facility, identifier.authority, identifier.value)
        if other == key or not identifier.links_patients:
            continue
        # A record carries its key as an identifier: this finds it without another query.
        found.update((r.id, r) for r in repo.records_with_identifier(identifier) if r.key == other)
    return list(found.values())


def _survivor_of(repo: MpiRepository, record: SourceRecord) -> SourceRecord:
    seen = {record.id}
    while record.merged_into and record.merged_into not in seen:
        survivor = repo.get_record_by_id(record.merged_into)
        if survivor is None:
            break
        seen.add(survivor.id)
        record = survivor
    return record
