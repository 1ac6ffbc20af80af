"""The index on SQL: an identity map over one connection, prefetched per batch, flushed in bulk.

The group committer runs many commands in one transaction. Loading the rows they touch one
query at a time would cost several round trips per message, so ``prefetch`` loads every
record of every patient the batch concerns, with the patients, in one statement (on
PostgreSQL in one round trip with BEGIN and the identifier locks); lookups then hit the map,
and ``flush`` writes every change with one executemany per table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg.rows import dict_row
from sqlalchemy import Connection, bindparam, delete, select, tuple_

from mpi.bulk import insert_rows, update_rows
from mpi.limits import BIRTH_DATE_KEY_CHARS, FAMILY_NAME_KEY_CHARS
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
        #: What the identifier rows of each record say in the database: (rows, patient id).
        self._stored_idents: dict[str, tuple[frozenset[tuple[IdentKey, str]], str]] = {}

    # -- reads ----------------------------------------------------------------------------

    def get_record(self, key: RecordKey) -> SourceRecord | None:
        record_id = self._by_key.get(key)
        if record_id is not None:
            return self._records[record_id]
        if key in self._absent_keys:
            return None
        self._load_records(select(source_records).where(_key_is(key)))
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
        loaded_patients = set()
        for row in _records_of_involved_patients(self._conn, wanted_idents):
            self._take_record_row(row)
            loaded_patients.add(row["patient_id"])
            if row["p_id"] is not None and row["p_id"] not in self._patients:
                self._patients[row["p_id"]] = patient_from_row(row, prefix="p_")
        self._complete_patients.update(loaded_patients)
        self._complete_idents.update(wanted_idents)
        self._absent_keys.update(k for k in wanted_keys if k not in self._by_key)

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
        insert_rows(conn, patients, [_patient_row(p) for p in self._new_patients.values()])
        update_rows(conn, patients, "id", [_patient_row(p) for p in self._dirty_patients.values()])
        # Updates before inserts: an A47 frees a key that a later message may take.
        update_rows(conn, source_records, "id", [_record_row(r) for r in self._dirty_records.values()])
        insert_rows(conn, source_records, [_record_row(r) for r in self._new_records.values()])
        self._flush_identifiers([*self._new_records.values(), *self._dirty_records.values()])
        for collection in (self._new_patients, self._dirty_patients, self._new_records, self._dirty_records):
            collection.clear()

    def _flush_identifiers(self, records: Sequence[SourceRecord]) -> None:
        stale: list[str] = []
        rows: list[dict[str, str]] = []
        for record in records:
            current = _ident_rows(record)
            state = (frozenset(current.items()), record.patient_id)
            before = self._stored_idents.get(record.id)
            if before == state:
                continue
            if before is not None:
                stale.append(record.id)
            rows.extend({"record_id": record.id, "authority": a, "value": v, "type_code": t,
                         "patient_id": record.patient_id} for (a, v), t in current.items())
            self._stored_idents[record.id] = state
        if stale:
            self._conn.execute(delete(identifiers).where(identifiers.c.record_id.in_(stale)))
        insert_rows(self._conn, identifiers, rows)

    # -- loading --------------------------------------------------------------------------

    def _load_records(self, query: Any) -> None:
        for row in self._conn.execute(query).mappings():
            self._take_record_row(row)

    def _take_record_row(self, row: Any) -> None:
        """Add a loaded row to the map, unless the map already holds (newer) state for it."""
        if row["id"] not in self._records:
            record = record_from_row(row)
            self._stored_idents[record.id] = (frozenset(_ident_rows(record).items()), record.patient_id)
            self._remember(record)

    def _load_identifiers(self, idents: list[IdentKey]) -> None:
        query = select(identifiers.c.record_id).where(
            tuple_(identifiers.c.authority, identifiers.c.value).in_(idents))
        record_ids = {row[0] for row in self._conn.execute(query)}
        missing = [i for i in record_ids if i not in self._records]
        if missing:
            self._load_records(select(source_records).where(source_records.c.id.in_(missing)))
        self._complete_idents.update(idents)

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


#: The same on PostgreSQL (run through the driver, see ``_locked_rows_pg``), with the
#: identifiers as two arrays: one SQL text whatever the group's size, so the server prepares
#: and plans it once.
_PATIENT_COLUMNS = ", ".join(f"p.{c.name} AS p_{c.name}" for c in patients.c)
_INVOLVED_PG = (
    f"SELECT r.*, {_PATIENT_COLUMNS}"  # noqa: S608 - column names from our metadata; values are bound
    " FROM mpi_source_records r LEFT OUTER JOIN mpi_patients p ON p.id = r.patient_id"
    " WHERE r.patient_id IN (SELECT i.patient_id FROM mpi_identifiers i"
    " JOIN unnest(%(authorities)s::text[], %(ident_values)s::text[]) AS w(authority, value)"
    " ON i.authority = w.authority AND i.value = w.value)"
)

#: Advisory locks of the index: (namespace, hash of "authority|value"). The relay uses 0x5042.
LOCK_NAMESPACE = 0x4D50  # "MP"
_LOCK_IDENTIFIERS_PG = (
    "SELECT count(pg_advisory_xact_lock(%(namespace)s, h)) FROM (SELECT DISTINCT"
    " hashtext(w.authority || '|' || w.value) AS h FROM unnest(%(authorities)s::text[],"
    " %(ident_values)s::text[]) AS w(authority, value) ORDER BY h) AS locks"
)


def _records_of_involved_patients(conn: Connection, idents: list[IdentKey]) -> Iterable[Any]:
    """Rows (mappings) of every record of every patient holding one of ``idents``."""
    if conn.dialect.name != "postgresql":
        return conn.execute(_RECORDS_OF_INVOLVED_PATIENTS, {"idents": idents}).mappings()
    return _locked_rows_pg(conn, idents)


def _locked_rows_pg(conn: Connection, idents: list[IdentKey]) -> list[dict[str, Any]]:
    """PostgreSQL: lock the identifiers, then read, in one round trip.

    Two writers (threads or processes) receiving one person under different identifiers at
    the same moment would otherwise each miss the other's uncommitted record and create two
    patients; with transaction-scoped advisory locks the second waits, then sees the first
    (its SELECT is a new statement, so its snapshot is taken after the lock was granted).
    Locks are taken in hash order, so two writers cannot wait for each other. BEGIN, the
    locks and the SELECT travel in one psycopg pipeline: SQLAlchemy cannot read a result
    inside a pipeline, so this one statement uses the driver directly.
    """
    driver = conn.connection.driver_connection
    params = {"namespace": LOCK_NAMESPACE, "authorities": [a for a, _ in idents],
              "ident_values": [v for _, v in idents]}
    with driver.pipeline():  # type: ignore[union-attr]
        driver.execute(_LOCK_IDENTIFIERS_PG, params)  # type: ignore[union-attr]
        cursor = driver.cursor(row_factory=dict_row)  # type: ignore[union-attr]
        cursor.execute(_INVOLVED_PG, params)
    rows: list[dict[str, Any]] = cursor.fetchall()
    return rows


def _key_is(key: RecordKey) -> Any:
    return tuple_(key.facility, key.authority, key.mrn) == _KEY_COLUMNS


def _ident_rows(record: SourceRecord) -> dict[IdentKey, str]:
    rows: dict[IdentKey, str] = {}
    for ident in record.demographics.identifiers:
        rows.setdefault((ident.authority, ident.value), ident.type_code)
    return rows


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _record_row(record: SourceRecord) -> dict[str, Any]:
    demo = record.demographics
    family = demo.names[0].family if demo.names else ""
    return {
        "id": record.id, "patient_id": record.patient_id, "facility": record.key.facility,
        "authority": record.key.authority, "mrn": record.key.mrn,
        "demographics": demo.json_text, "family_name": family.strip().upper()[:FAMILY_NAME_KEY_CHARS],
        "birth_date": demo.birth_date[:BIRTH_DATE_KEY_CHARS], "merged_into": record.merged_into,
        "created_at": record.created_at, "updated_at": record.updated_at,
        "version": record.version,
    }


def _patient_row(patient: Patient) -> dict[str, Any]:
    return {
        "id": patient.id, "merged_into": patient.merged_into,
        "best": patient.best.json_text, "provenance": _dumps(patient.provenance),
        "winner_facility": patient.winner_facility, "winner_tier": patient.winner_tier,
        "event_sequence": patient.event_sequence,
        "created_at": patient.created_at, "updated_at": patient.updated_at,
    }


def record_from_row(row: Any) -> SourceRecord:
    """Rebuild a ``SourceRecord`` from a ``mpi_source_records`` row mapping."""
    return SourceRecord(
        id=row["id"], key=RecordKey(row["facility"], row["authority"], row["mrn"]),
        patient_id=row["patient_id"],
        demographics=Demographics.from_dict(orjson.loads(row["demographics"])),
        created_at=_utc(row["created_at"]), updated_at=_utc(row["updated_at"]),
        merged_into=row["merged_into"], version=row["version"],
    )


def patient_from_row(row: Any, prefix: str = "") -> Patient:
    """Rebuild a ``Patient`` from a ``mpi_patients`` row mapping (columns maybe prefixed)."""
    p = prefix
    return Patient(
        id=row[f"{p}id"], created_at=_utc(row[f"{p}created_at"]),
        updated_at=_utc(row[f"{p}updated_at"]),
        best=Demographics.from_dict(orjson.loads(row[f"{p}best"])),
        provenance=orjson.loads(row[f"{p}provenance"]), winner_facility=row[f"{p}winner_facility"],
        winner_tier=row[f"{p}winner_tier"], merged_into=row[f"{p}merged_into"],
        event_sequence=row[f"{p}event_sequence"],
    )


def _utc(stamp: datetime) -> datetime:
    """Rows read through the driver directly carry the session's time zone: use UTC."""
    return stamp if stamp.tzinfo is UTC else stamp.astimezone(UTC)
