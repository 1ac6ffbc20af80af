"""The index on SQL: an identity map over one connection, prefetched per batch, flushed in bulk.

The group committer runs many commands in one transaction. Loading the rows they touch one
query at a time would cost several round trips per message, so ``prefetch`` loads the
records, identifiers and patients of the whole batch in four queries; lookups then hit the
map, and ``flush`` writes every change with one executemany per table.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, tuple_, update

from mpi.model import Demographics, Identifier, Patient, RecordKey, SourceRecord
from mpi.repository import MpiRepository
from mpi.tables import identifiers, patients, source_records

__all__ = ["SqlMpiRepository", "patient_from_row", "record_from_row"]

IdentKey = tuple[str, str]


class SqlMpiRepository(MpiRepository):
    """``MpiRepository`` over one SQLAlchemy ``Connection`` inside an open transaction."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection
        self._records: dict[str, SourceRecord] = {}
        self._by_key: dict[RecordKey, str] = {}
        self._absent_keys: set[RecordKey] = set()
        self._by_ident: dict[IdentKey, set[str]] = defaultdict(set)
        self._complete_idents: set[IdentKey] = set()
        self._by_patient: dict[str, set[str]] = defaultdict(set)
        self._complete_patients: set[str] = set()
        self._patients: dict[str, Patient] = {}
        self._indexed: dict[str, tuple[frozenset[IdentKey], str]] = {}
        self._new_records: dict[str, SourceRecord] = {}
        self._dirty_records: dict[str, SourceRecord] = {}
        self._new_patients: dict[str, Patient] = {}
        self._dirty_patients: dict[str, Patient] = {}
        self._stored_idents: dict[str, frozenset[IdentKey]] = {}

    # -- reads ----------------------------------------------------------------------------

    def get_record(self, key: RecordKey) -> SourceRecord | None:
        record_id = self._by_key.get(key)
        if record_id is not None:
            return self._records[record_id]
        if key in self._absent_keys:
            return None
        self._load_records(select(source_records).where(_key_clause([key])))
        record_id = self._by_key.get(key)
        if record_id is None:
            self._absent_keys.add(key)
            return None
        return self._records[record_id]

    def get_record_by_id(self, record_id: str) -> SourceRecord | None:
        if record_id not in self._records:
            self._load_records(select(source_records).where(source_records.c.id == record_id))
        return self._records.get(record_id)

    def records_with_identifier(self, identifier: Identifier) -> list[SourceRecord]:
        ident = (identifier.authority, identifier.value)
        if ident not in self._complete_idents:
            self._load_identifiers([ident])
        return [self._records[i] for i in sorted(self._by_ident.get(ident, ()))]

    def records_of_patient(self, patient_id: str) -> list[SourceRecord]:
        if patient_id not in self._complete_patients:
            self._load_patient_records([patient_id])
        return [self._records[i] for i in sorted(self._by_patient.get(patient_id, ()))]

    def get_patient(self, patient_id: str) -> Patient | None:
        if patient_id not in self._patients:
            self._load_patients([patient_id])
        return self._patients.get(patient_id)

    def prefetch(self, keys: Iterable[RecordKey], idents: Iterable[Identifier]) -> None:
        """Load everything a batch about these keys and identifiers will look at."""
        wanted_keys = [k for k in set(keys) if k not in self._by_key and k not in self._absent_keys]
        wanted_idents = list({(i.authority, i.value) for i in idents} - self._complete_idents)
        record_ids = self._load_identifiers(wanted_idents, load_records=False)
        clauses = []
        if wanted_keys:
            clauses.append(_key_clause(wanted_keys))
        missing = [i for i in record_ids if i not in self._records]
        if missing:
            clauses.append(source_records.c.id.in_(missing))
        if clauses:
            self._load_records(select(source_records).where(or_(*clauses)))
        self._absent_keys.update(k for k in wanted_keys if k not in self._by_key)
        patient_ids = {r.patient_id for r in self._records.values()}
        self._load_patient_records([p for p in patient_ids if p not in self._complete_patients])
        self._load_patients([p for p in patient_ids if p not in self._patients])

    # -- writes ---------------------------------------------------------------------------

    def add_record(self, record: SourceRecord) -> None:
        self._new_records[record.id] = record
        self._remember(record)

    def add_patient(self, patient: Patient) -> None:
        self._new_patients[patient.id] = patient
        self._patients[patient.id] = patient
        self._complete_patients.add(patient.id)

    def record_changed(self, record: SourceRecord, *, old_key: RecordKey | None = None) -> None:
        if old_key is not None and self._by_key.get(old_key) == record.id:
            del self._by_key[old_key]
            self._absent_keys.add(old_key)
        if record.id not in self._new_records:
            self._dirty_records[record.id] = record
        self._remember(record)

    def patient_changed(self, patient: Patient) -> None:
        if patient.id not in self._new_patients:
            self._dirty_patients[patient.id] = patient

    def flush(self) -> None:
        """Write every change since the last flush."""
        conn = self._conn
        if self._new_patients:
            conn.execute(insert(patients), [_patient_row(p) for p in self._new_patients.values()])
        if self._dirty_patients:
            rows = [{"b_id": p.id, **_patient_row(p)} for p in self._dirty_patients.values()]
            conn.execute(update(patients).where(patients.c.id == bindparam("b_id")), rows)
        # Updates before inserts: an A47 frees a key that a later message may take.
        if self._dirty_records:
            rows = [{"b_id": r.id, **_record_row(r)} for r in self._dirty_records.values()]
            conn.execute(update(source_records).where(source_records.c.id == bindparam("b_id")), rows)
        if self._new_records:
            conn.execute(insert(source_records), [_record_row(r) for r in self._new_records.values()])
        self._flush_identifiers([*self._new_records.values(), *self._dirty_records.values()])
        for collection in (self._new_patients, self._dirty_patients, self._new_records, self._dirty_records):
            collection.clear()

    def _flush_identifiers(self, records: Sequence[SourceRecord]) -> None:
        stale: list[str] = []
        rows: list[dict[str, str]] = []
        for record in records:
            current = _ident_rows(record)
            before = self._stored_idents.get(record.id)
            if before is not None and before == frozenset(current):
                continue
            if before is not None:
                stale.append(record.id)
            rows.extend({"record_id": record.id, "authority": a, "value": v, "type_code": t}
                        for (a, v), t in current.items())
            self._stored_idents[record.id] = frozenset(current)
        if stale:
            self._conn.execute(delete(identifiers).where(identifiers.c.record_id.in_(stale)))
        if rows:
            self._conn.execute(insert(identifiers), rows)

    # -- loading --------------------------------------------------------------------------

    def _load_records(self, query: Any) -> list[str]:
        loaded = []
        for row in self._conn.execute(query).mappings():
            if row["id"] not in self._records:
                record = record_from_row(row)
                self._stored_idents[record.id] = frozenset(_ident_rows(record))
                self._remember(record)
            loaded.append(row["id"])
        return loaded

    def _load_identifiers(self, idents: list[IdentKey], load_records: bool = True) -> set[str]:
        if not idents:
            return set()
        query = select(identifiers.c.record_id).where(
            tuple_(identifiers.c.authority, identifiers.c.value).in_(idents))
        record_ids = {row[0] for row in self._conn.execute(query)}
        missing = [i for i in record_ids if i not in self._records]
        if load_records and missing:
            self._load_records(select(source_records).where(source_records.c.id.in_(missing)))
        self._complete_idents.update(idents)
        return record_ids

    def _load_patient_records(self, patient_ids: list[str]) -> None:
        if patient_ids:
            self._load_records(select(source_records).where(source_records.c.patient_id.in_(patient_ids)))
            self._complete_patients.update(patient_ids)

    def _load_patients(self, patient_ids: list[str]) -> None:
        if patient_ids:
            for row in self._conn.execute(select(patients).where(patients.c.id.in_(patient_ids))).mappings():
                self._patients.setdefault(row["id"], patient_from_row(row))

    def _remember(self, record: SourceRecord) -> None:
        """Keep the key, identifier and patient indexes of the map in step with ``record``."""
        self._records[record.id] = record
        self._by_key[record.key] = record.id
        self._absent_keys.discard(record.key)
        idents = frozenset((i.authority, i.value) for i in record.demographics.identifiers)
        before = self._indexed.get(record.id)
        if before is not None:
            for ident in before[0] - idents:
                self._by_ident[ident].discard(record.id)
            if before[1] != record.patient_id:
                self._by_patient[before[1]].discard(record.id)
        for ident in idents:
            self._by_ident[ident].add(record.id)
        self._by_patient[record.patient_id].add(record.id)
        self._indexed[record.id] = (idents, record.patient_id)


def _key_clause(keys: Sequence[RecordKey]) -> Any:
    columns = tuple_(source_records.c.facility, source_records.c.authority, source_records.c.mrn)
    return columns.in_([(k.facility, k.authority, k.mrn) for k in keys])


def _ident_rows(record: SourceRecord) -> dict[IdentKey, str]:
    rows: dict[IdentKey, str] = {}
    for ident in record.demographics.identifiers:
        rows.setdefault((ident.authority, ident.value), ident.type_code)
    return rows


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _record_row(record: SourceRecord) -> dict[str, Any]:
    demo = record.demographics
    family = demo.names[0].family if demo.names else ""
    return {
        "id": record.id, "patient_id": record.patient_id, "facility": record.key.facility,
        "authority": record.key.authority, "mrn": record.key.mrn,
        "demographics": _dumps(demo.to_dict()), "family_name": family.strip().upper()[:200],
        "birth_date": demo.birth_date[:10], "merged_into": record.merged_into,
        "created_at": record.created_at, "updated_at": record.updated_at,
        "version": record.version,
    }


def _patient_row(patient: Patient) -> dict[str, Any]:
    return {
        "id": patient.id, "merged_into": patient.merged_into,
        "best": _dumps(patient.best.to_dict()), "provenance": _dumps(patient.provenance),
        "winner_facility": patient.winner_facility, "winner_tier": patient.winner_tier,
        "event_sequence": patient.event_sequence,
        "created_at": patient.created_at, "updated_at": patient.updated_at,
    }


def record_from_row(row: Any) -> SourceRecord:
    """Rebuild a ``SourceRecord`` from a ``mpi_source_records`` row mapping."""
    return SourceRecord(
        id=row["id"], key=RecordKey(row["facility"], row["authority"], row["mrn"]),
        patient_id=row["patient_id"],
        demographics=Demographics.from_dict(json.loads(row["demographics"])),
        created_at=row["created_at"], updated_at=row["updated_at"], merged_into=row["merged_into"],
        version=row["version"],
    )


def patient_from_row(row: Any) -> Patient:
    """Rebuild a ``Patient`` from a ``mpi_patients`` row mapping."""
    return Patient(
        id=row["id"], created_at=row["created_at"], updated_at=row["updated_at"],
        best=Demographics.from_dict(json.loads(row["best"])),
        provenance=json.loads(row["provenance"]), winner_facility=row["winner_facility"],
        winner_tier=row["winner_tier"], merged_into=row["merged_into"],
        event_sequence=row["event_sequence"],
    )
