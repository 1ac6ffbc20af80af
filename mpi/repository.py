"""The index's storage port, and an in-memory double of it.

The operations in ``mpi.index`` talk only to ``MpiRepository``. The SQL implementation
(``mpi.sql``) loads what a whole batch of commands needs in a few queries and writes the
changes back in bulk; the in-memory one serves unit tests and anything that wants an index
without a database.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from mpi.model import Identifier, Patient, RecordKey, SourceRecord

__all__ = ["InMemoryMpiRepository", "MpiRepository"]


class MpiRepository(ABC):
    """Where source records and patients live. Changes are made on the returned objects
    and announced with ``record_changed`` / ``patient_changed`` so a store can write them."""

    @abstractmethod
    def get_record(self, key: RecordKey) -> SourceRecord | None:
        """The record with this key, active or merged."""

    @abstractmethod
    def get_record_by_id(self, record_id: str) -> SourceRecord | None:
        """The record with this id, active or merged."""

    @abstractmethod
    def records_with_identifier(self, identifier: Identifier) -> list[SourceRecord]:
        """Every record (active or merged) that carries this (authority, value)."""

    @abstractmethod
    def records_of_patient(self, patient_id: str) -> list[SourceRecord]:
        """Every record (active or merged) assigned to the patient."""

    @abstractmethod
    def get_patient(self, patient_id: str) -> Patient | None:
        """The patient with this id, merged or not."""

    @abstractmethod
    def add_record(self, record: SourceRecord) -> None:
        """Store a new record."""

    @abstractmethod
    def add_patient(self, patient: Patient) -> None:
        """Store a new patient."""

    @abstractmethod
    def record_changed(self, record: SourceRecord, *, old_key: RecordKey | None = None) -> None:
        """The record was changed in place; ``old_key`` is given when its key changed."""

    @abstractmethod
    def patient_changed(self, patient: Patient) -> None:
        """The patient was changed in place."""

    def prefetch(self, keys: Iterable[RecordKey], identifiers: Iterable[Identifier]) -> None:  # noqa: B027
        """Hint: the coming operations concern these keys and identifiers. Optional."""

    def prefetch_patients(self, patient_ids: Iterable[str]) -> None:  # noqa: B027
        """Hint: these patients will be asked for (``get_patient``). Optional."""


class InMemoryMpiRepository(MpiRepository):
    """A complete repository held in dictionaries."""

    def __init__(self) -> None:
        self.records: dict[str, SourceRecord] = {}
        self.patients: dict[str, Patient] = {}
        self._by_key: dict[RecordKey, str] = {}

    def get_record(self, key: RecordKey) -> SourceRecord | None:
        record_id = self._by_key.get(key)
        return self.records[record_id] if record_id else None

    def get_record_by_id(self, record_id: str) -> SourceRecord | None:
        return self.records.get(record_id)

    def records_with_identifier(self, identifier: Identifier) -> list[SourceRecord]:
        wanted = (identifier.authority, identifier.value)
        return [r for r in self.records.values()
                if any((i.authority, i.value) == wanted for i in r.demographics.identifiers)]

    def records_of_patient(self, patient_id: str) -> list[SourceRecord]:
        return [r for r in self.records.values() if r.patient_id == patient_id]

    def get_patient(self, patient_id: str) -> Patient | None:
        return self.patients.get(patient_id)

    def add_record(self, record: SourceRecord) -> None:
        self.records[record.id] = record
        self._by_key[record.key] = record.id

    def add_patient(self, patient: Patient) -> None:
        self.patients[patient.id] = patient

    def record_changed(self, record: SourceRecord, *, old_key: RecordKey | None = None) -> None:
        if old_key is not None:
            self._by_key.pop(old_key, None)
        self._by_key[record.key] = record.id

    def patient_changed(self, patient: Patient) -> None:
        self.patients[patient.id] = patient
