"""Read side of the index: find patients by identifier or by family name and birth date.

Merged patients are never answered as themselves: a hit on a merged record or patient is
followed to the survivor, so one person is one answer. A query value holding a character
no database stores (``mpi.limits``) matches nothing, and is never sent to the database
(PostgreSQL would refuse the statement instead of answering).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from mpi.limits import first_unstorable
from mpi.model import Patient, RecordKey, SourceRecord
from mpi.rows import patient_from_row, record_from_row
from mpi.tables import identifiers, patients, source_records

__all__ = ["MpiSearch", "PatientView", "RecordView"]

_MAX_MERGE_HOPS = 32


@dataclass(frozen=True, slots=True)
class PatientView:
    """A patient with its best demographics, their provenance and all its source records."""

    patient: Patient
    records: tuple[SourceRecord, ...]

    def to_dict(self) -> dict[str, Any]:
        p = self.patient
        return {
            "id": p.id,
            "best_demographics": p.best.to_dict(),
            "provenance": dict(p.provenance),
            "winner": {"facility": p.winner_facility, "tier": p.winner_tier},
            "identifiers": [i.to_dict() for i in p.best.identifiers],
            "created_at": p.created_at.isoformat(),
            "updated_at": p.updated_at.isoformat(),
            "source_records": [_record_dict(r) for r in self.records],
        }


def _record_dict(record: SourceRecord) -> dict[str, Any]:
    return {
        "id": record.id, "facility": record.key.facility, "authority": record.key.authority,
        "mrn": record.key.mrn, "active": record.is_active, "merged_into": record.merged_into,
        "created_at": record.created_at.isoformat(), "updated_at": record.updated_at.isoformat(),
        "demographics": record.demographics.to_dict(),
    }


@dataclass(frozen=True, slots=True)
class RecordView:
    """One source record as a resource: the record and the ids of records merged into it."""

    record: SourceRecord
    replaces: tuple[str, ...] = ()


class MpiSearch:
    """Queries over the index tables; ``connect`` yields a connection for one query."""

    def __init__(self, connect: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._connect = connect

    def by_identifier(self, authority: str | None, value: str,
                      facility: str | None = None) -> list[PatientView]:
        if not _storable(authority, value, facility):
            return []
        query = select(source_records.c.patient_id).join(
            identifiers, identifiers.c.record_id == source_records.c.id).where(identifiers.c.value == value)
        if authority:
            query = query.where(identifiers.c.authority == authority)
        return self._views(query, facility)

    def by_name_and_birth_date(self, family: str | None, birth_date: str | None,
                               facility: str | None = None) -> list[PatientView]:
        if not _storable(family, birth_date, facility):
            return []
        query = select(source_records.c.patient_id)
        if family:
            query = query.where(source_records.c.family_name == family.strip().upper())
        if birth_date:
            query = query.where(source_records.c.birth_date == birth_date)
        if facility:
            query = query.where(source_records.c.facility == facility)
        return self._views(query, facility)

    def get(self, patient_id: str) -> PatientView | None:
        if not _storable(patient_id):
            return None
        with self._connect() as conn:
            surviving = _survivors(conn, [patient_id])
            views = _load_views(conn, surviving)
        return views[0] if views else None

    # -- source records as resources (FHIR Patient reads) ---------------------------------

    def record(self, record_id: str) -> RecordView | None:
        """The source record with this id, active or merged."""
        if not _storable(record_id):
            return None
        views = self._records(select(source_records).where(source_records.c.id == record_id))
        return views[0] if views else None

    def record_with_key(self, key: RecordKey) -> RecordView | None:
        """The source record a facility keeps under (authority, MRN)."""
        if not _storable(key.facility, key.authority, key.mrn):
            return None
        c = source_records.c
        views = self._records(select(source_records).where(
            c.facility == key.facility, c.authority == key.authority, c.mrn == key.mrn))
        return views[0] if views else None

    def records_with_identifier(self, authority: str | None, value: str) -> list[RecordView]:
        """Source records carrying the identifier (any authority when ``authority`` is None)."""
        if not _storable(authority, value):
            return []
        query = select(identifiers.c.record_id).where(identifiers.c.value == value)
        if authority is not None:
            query = query.where(identifiers.c.authority == authority)
        return self._records(select(source_records).where(source_records.c.id.in_(query))
                             .order_by(source_records.c.created_at, source_records.c.id).limit(200))

    def _records(self, query: Any) -> list[RecordView]:
        with self._connect() as conn:
            records = [record_from_row(row) for row in conn.execute(query).mappings()]
            if not records:
                return []
            merged = conn.execute(select(source_records.c.merged_into, source_records.c.id).where(
                source_records.c.merged_into.in_([r.id for r in records]))
                .order_by(source_records.c.id))
            replaces: dict[str, list[str]] = {}
            for survivor, prior in merged:
                replaces.setdefault(survivor, []).append(prior)
        return [RecordView(r, tuple(replaces.get(r.id, ()))) for r in records]

    def _views(self, query: Any, facility: str | None) -> list[PatientView]:
        with self._connect() as conn:
            hits = list(dict.fromkeys(row[0] for row in conn.execute(query.limit(200))))
            views = _load_views(conn, _survivors(conn, hits))
        if facility:
            views = [v for v in views if any(r.key.facility == facility for r in v.records)]
        return views


def _storable(*values: str | None) -> bool:
    """Whether every value could be stored at all (else nothing stored can match it)."""
    return all(value is None or first_unstorable(value) is None for value in values)


def _survivors(conn: Connection, patient_ids: Iterable[str]) -> list[str]:
    """Follow ``merged_into`` pointers to the surviving patients, keeping first-seen order."""
    result: dict[str, None] = {}
    for patient_id in patient_ids:
        current = patient_id
        for _ in range(_MAX_MERGE_HOPS):
            row = conn.execute(select(patients.c.merged_into).where(patients.c.id == current)).first()
            if row is None or row[0] is None:
                break
            current = row[0]
        result.setdefault(current, None)
    return list(result)


def _load_views(conn: Connection, patient_ids: list[str]) -> list[PatientView]:
    if not patient_ids:
        return []
    rows = conn.execute(select(patients).where(patients.c.id.in_(patient_ids))).mappings()
    by_id = {row["id"]: patient_from_row(row) for row in rows}
    records: dict[str, list[SourceRecord]] = {pid: [] for pid in by_id}
    query = select(source_records).where(source_records.c.patient_id.in_(list(by_id)))
    for row in conn.execute(query.order_by(source_records.c.created_at, source_records.c.id)).mappings():
        records[row["patient_id"]].append(record_from_row(row))
    return [PatientView(by_id[pid], tuple(records[pid])) for pid in patient_ids if pid in by_id]
