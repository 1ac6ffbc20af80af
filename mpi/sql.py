"""The index on SQL: an identity map over one connection, prefetched per batch, flushed in bulk.

The group committer runs many commands in one transaction. Loading the rows they touch one
query at a time would cost several round trips per message, so ``prefetch`` loads every
record of every patient the batch concerns, with the patients, in one statement (on
PostgreSQL in one round trip with BEGIN and the identifier locks); lookups then hit the map,
and ``flush`` writes every change with one executemany per table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select, tuple_

from mpi.bulk import delete_rows, insert_rows, update_rows
from mpi.locks import Rider, lock_identifiers, lock_patients, locked_prefetch
from mpi.model import Identifier, Patient, RecordKey, SourceRecord
from mpi.repository import MpiRepository
from mpi.rows import IdentKey, ident_rows, patient_from_row, patient_row, record_from_row, record_row
from mpi.tables import identifiers, patients, source_records

__all__ = ["SqlMpiRepository"]


class SqlMpiRepository(MpiRepository):
    """``MpiRepository`` over one SQLAlchemy ``Connection`` inside an open transaction.

    On PostgreSQL it keeps the locking rule of ``mpi.locks``: when a read returns, every
    patient and every record in the map was read after its patient's row was locked by this
    transaction (or the patient is new), so nothing it hands out can be changed by another
    writer before this one commits. Reads outside the prefetch (rare: a merge chain, a link
    by record id) lock what they find and read it again. SQLite has one writer: no locks.
    """

    def __init__(self, connection: Connection, riders: Callable[[], Sequence[Rider]] | None = None) -> None:
        """``riders`` gives the reads of other stores that join the next locked prefetch."""
        self._conn = connection
        self._riders = riders
        self._locking = connection.dialect.name == "postgresql"
        self._locked: set[str] = set()  # patients locked (or created) by this transaction
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
        #: What the identifier rows of each record say in the database: (rows, patient id).
        self._stored_idents: dict[str, tuple[frozenset[tuple[IdentKey, str]], str]] = {}

    # -- reads ----------------------------------------------------------------------------

    def get_record(self, key: RecordKey) -> SourceRecord | None:
        record_id = self._by_key.get(key)
        if record_id is not None:
            return self._records[record_id]
        if key in self._absent_keys:
            return None
        self._lock_identifiers([(key.authority, key.mrn)])  # a record's key is an identifier
        self._load_records(select(source_records).where(_key_is(key)))
        self._settle()
        record_id = self._by_key.get(key)
        if record_id is None:
            self._absent_keys.add(key)
            return None
        return self._records[record_id]

    def get_record_by_id(self, record_id: str) -> SourceRecord | None:
        if record_id not in self._records:
            self._load_records(select(source_records).where(source_records.c.id == record_id))
            self._settle()
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
        """Load everything a batch about these keys and identifiers will look at, in one query:
        every record of every patient that holds one of the keys or identifiers, with its
        patient. That covers all records carrying those identifiers, so later lookups of
        them are answered from the map."""
        wanted_keys = [k for k in set(keys) if k not in self._by_key and k not in self._absent_keys]
        # A record always carries its own key as an identifier, so looking up the keys'
        # (authority, MRN) pairs finds every record that holds one of the keys.
        asked = {(i.authority, i.value) for i in idents} | {(k.authority, k.mrn) for k in wanted_keys}
        wanted_idents = sorted(asked - self._complete_idents)
        if not wanted_idents:
            return
        rows: Iterable[Any]
        if self._locking:
            riders = self._riders() if self._riders is not None else ()
            locked, rows = locked_prefetch(self._conn, wanted_idents, riders)
            self._locked |= locked
        else:
            rows = self._conn.execute(_RECORDS_OF_INVOLVED_PATIENTS,
                                      {"idents": wanted_idents}).mappings()
        self._take_involved(rows)
        self._complete_idents.update(wanted_idents)
        self._absent_keys.update(k for k in wanted_keys if k not in self._by_key)
        # A merge committed between the locks and the read may have moved records of these
        # identifiers to a patient not locked yet: lock it and read its records again.
        self._settle()

    def _take_involved(self, rows: Iterable[Any]) -> None:
        """Take the prefetch's rows: records, their patients, and which patients are complete."""
        loaded_patients = set()
        for row in rows:
            self._takerecord_row(row)
            loaded_patients.add(row["patient_id"])
            patient_id = row["p_id"]
            if patient_id is not None and patient_id not in self._patients:
                self._patients[patient_id] = patient_from_row(row, prefix="p_")
        self._complete_patients.update(loaded_patients)

    def prefetch_patients(self, patient_ids: Iterable[str]) -> None:
        """Load the patients not in the map yet, in one query."""
        self._load_patients([p for p in set(patient_ids) if p not in self._patients])

    # -- writes ---------------------------------------------------------------------------

    def add_record(self, record: SourceRecord) -> None:
        self._new_records[record.id] = record
        self._remember(record)

    def add_patient(self, patient: Patient) -> None:
        self._new_patients[patient.id] = patient
        self._patients[patient.id] = patient
        self._complete_patients.add(patient.id)
        self._locked.add(patient.id)  # invisible to others until commit

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
        insert_rows(conn, patients, [patient_row(p) for p in self._new_patients.values()])
        update_rows(conn, patients, "id", [patient_row(p) for p in self._dirty_patients.values()])
        # Updates before inserts: an A47 frees a key that a later message may take.
        update_rows(conn, source_records, "id", [record_row(r) for r in self._dirty_records.values()])
        insert_rows(conn, source_records, [record_row(r) for r in self._new_records.values()])
        self._flush_identifiers([*self._new_records.values(), *self._dirty_records.values()])
        for collection in (self._new_patients, self._dirty_patients, self._new_records, self._dirty_records):
            collection.clear()

    def _flush_identifiers(self, records: Sequence[SourceRecord]) -> None:
        stale: list[str] = []
        rows: list[dict[str, str]] = []
        for record in records:
            current = ident_rows(record)
            state = (frozenset(current.items()), record.patient_id)
            before = self._stored_idents.get(record.id)
            if before == state:
                continue
            if before is not None:
                stale.append(record.id)
            rows.extend({"record_id": record.id, "authority": a, "value": v, "type_code": t,
                         "patient_id": record.patient_id} for (a, v), t in current.items())
            self._stored_idents[record.id] = state
        delete_rows(self._conn, identifiers, "record_id", stale)
        insert_rows(self._conn, identifiers, rows)

    # -- loading --------------------------------------------------------------------------

    def _load_records(self, query: Any) -> None:
        for row in self._conn.execute(query).mappings():
            self._takerecord_row(row)

    def _takerecord_row(self, row: Any, *, refresh: bool = False) -> None:
        """Add a loaded row to the map. A record already there is kept (the map holds the
        newer state), unless ``refresh`` asks for the row read again under its patient's
        lock; records this transaction changed are never replaced."""
        record_id = row["id"]
        known = self._records.get(record_id)
        if known is not None and (not refresh or record_id in self._dirty_records
                                  or record_id in self._new_records):
            return
        record = record_from_row(row)
        if known is not None and known.key != record.key and self._by_key.get(known.key) == record_id:
            del self._by_key[known.key]  # another writer re-keyed it (A47) before we locked
        self._stored_idents[record.id] = (frozenset(ident_rows(record).items()), record.patient_id)
        self._remember(record)

    def _load_identifiers(self, idents: list[IdentKey]) -> None:
        self._lock_identifiers(idents)
        query = select(identifiers.c.record_id).where(
            tuple_(identifiers.c.authority, identifiers.c.value).in_(idents))
        record_ids = {row[0] for row in self._conn.execute(query)}
        missing = [i for i in record_ids if i not in self._records]
        if missing:
            self._load_records(select(source_records).where(source_records.c.id.in_(missing)))
        self._settle()
        self._complete_idents.update(idents)

    def _load_patient_records(self, patient_ids: list[str]) -> None:
        if patient_ids:
            self._lock_patients(patient_ids)
            self._load_records(select(source_records).where(source_records.c.patient_id.in_(patient_ids)))
            self._complete_patients.update(patient_ids)
            self._settle()

    def _load_patients(self, patient_ids: list[str]) -> None:
        if patient_ids:
            self._lock_patients(patient_ids)
            for row in self._conn.execute(select(patients).where(patients.c.id.in_(patient_ids))).mappings():
                self._patients.setdefault(row["id"], patient_from_row(row))

    # -- locks (PostgreSQL) ---------------------------------------------------------------

    def _lock_identifiers(self, idents: list[IdentKey]) -> None:
        if self._locking:
            lock_identifiers(self._conn, idents)

    def _lock_patients(self, patient_ids: Iterable[str]) -> None:
        wanted = sorted(set(patient_ids) - self._locked)
        if self._locking and wanted:
            lock_patients(self._conn, wanted)
            self._locked.update(wanted)

    def _settle(self) -> None:
        """Lock the patients of records that were read without their patient's lock (a
        record found by key or id outside the prefetch, a record a concurrent merge moved)
        and read those records and patients again, until every record in the map is fresh."""
        if not self._locking:
            return
        while stale := [r.id for r in self._records.values() if r.patient_id not in self._locked]:
            newly = sorted({self._records[i].patient_id for i in stale})
            self._lock_patients(newly)
            query = select(source_records).where(
                or_(source_records.c.id.in_(stale), source_records.c.patient_id.in_(newly)))
            for row in self._conn.execute(query).mappings():
                self._takerecord_row(row, refresh=True)
            for row in self._conn.execute(select(patients).where(patients.c.id.in_(newly))).mappings():
                self._patients[row["id"]] = patient_from_row(row)
            self._complete_patients.update(newly)

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


_KEY_COLUMNS = tuple_(source_records.c.facility, source_records.c.authority, source_records.c.mrn)
#: Built once (building a statement costs more than running it on a warm connection), and
#: kept to a plain semi-join: PostgreSQL plans it in a fifth of a millisecond, where the
#: union of key and identifier lookups it replaced took two and a half.
_RECORDS_OF_INVOLVED_PATIENTS = (
    select(source_records, *(c.label(f"p_{c.name}") for c in patients.c))
    .outerjoin(patients, patients.c.id == source_records.c.patient_id)
    .where(source_records.c.patient_id.in_(
        select(identifiers.c.patient_id)
        .where(tuple_(identifiers.c.authority, identifiers.c.value)
               .in_(bindparam("idents", expanding=True)))))
)


def _key_is(key: RecordKey) -> Any:
    return tuple_(key.facility, key.authority, key.mrn) == _KEY_COLUMNS
