"""The index's operations: upsert a source record, merge two records, change an identifier.

Each operation checks everything it needs before it changes anything, so an ``MpiError``
leaves the repository as it was. Each returns the ``PatientChange`` of every patient whose
best demographics (or merge state) moved, which the engine turns into ``mpi.changed`` events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from mpi.errors import IdentifierInUse, InvalidIndexOperation, UnknownRecord
from mpi.model import (
    DEMOGRAPHIC_FIELDS,
    Demographics,
    DemographicsUpdate,
    Identifier,
    Patient,
    RecordKey,
    SourceRecord,
)
from mpi.ranking import TierOf, best_demographics
from mpi.repository import MpiRepository

__all__ = ["PatientChange", "PatientIndex"]


@dataclass(frozen=True, slots=True)
class PatientChange:
    """How one patient's best demographics changed in one operation."""

    patient_id: str
    changed: dict[str, tuple[Any, Any]]  # field -> (old, new), JSON-able values
    identifiers: tuple[Identifier, ...]
    winner_facility: str
    winner_tier: int | None
    created: bool = False
    merged_into: str | None = None
    record_ids: tuple[str, ...] = field(default=())


class PatientIndex:
    """Operations on an ``MpiRepository``; ``now`` and ``new_id`` are injected for tests."""

    def __init__(self, repository: MpiRepository, tier_of: TierOf,
                 new_id: Callable[[], str], now: Callable[[], datetime]) -> None:
        self._repo = repository
        self._tier_of = tier_of
        self._new_id = new_id
        self._now = now

    # -- upsert ---------------------------------------------------------------------------

    def upsert(self, key: RecordKey, update: DemographicsUpdate) -> list[PatientChange]:
        """Create or update the facility's record under ``key`` and re-rank its patient."""
        record, created = self._apply(key, update)
        return self._rerank([record.patient_id], created_patient=record.patient_id if created else None)

    def _apply(self, key: RecordKey, update: DemographicsUpdate) -> tuple[SourceRecord, bool]:
        now = self._now()
        record = self._repo.get_record(key)
        if record is None:
            return self._create(key, update.apply_to(Demographics()), now)
        record.demographics = _with_key_identifier(update.apply_to(record.demographics), key)
        record.updated_at = now
        self._repo.record_changed(record)
        return record, False

    def _create(self, key: RecordKey, demographics: Demographics, now: datetime, *,
                patient_id: str | None = None,
                merged_into: str | None = None) -> tuple[SourceRecord, bool]:
        demographics = _with_key_identifier(demographics, key)
        if patient_id is None:
            patient_id = self._linked_patient(demographics.identifiers)
        created = patient_id is None
        if patient_id is None:
            patient_id = self._new_id()
            self._repo.add_patient(Patient(id=patient_id, created_at=now, updated_at=now))
        record = SourceRecord(id=self._new_id(), key=key, patient_id=patient_id,
                              demographics=demographics, created_at=now, updated_at=now,
                              merged_into=merged_into)
        self._repo.add_record(record)
        return record, created

    def _linked_patient(self, identifiers: tuple[Identifier, ...]) -> str | None:
        """The patient of the first active record sharing a linking identifier, if any."""
        for identifier in identifiers:
            if not identifier.links_patients:
                continue
            for record in self._repo.records_with_identifier(identifier):
                if record.is_active:
                    return self._surviving_patient(record.patient_id)
        return None

    def _surviving_patient(self, patient_id: str) -> str:
        seen = {patient_id}
        patient = self._repo.get_patient(patient_id)
        while patient is not None and patient.merged_into and patient.merged_into not in seen:
            seen.add(patient.merged_into)
            patient = self._repo.get_patient(patient.merged_into)
        return patient.id if patient is not None else patient_id

    # -- merge ----------------------------------------------------------------------------

    def merge(self, survivor: RecordKey, prior: RecordKey,
              update: DemographicsUpdate) -> list[PatientChange]:
        """Merge the facility's record ``prior`` into ``survivor`` (created if unknown).

        The prior record keeps its data for the audit trail but no longer ranks; its patient
        is merged into the survivor's when it has no other active record left.
        """
        if survivor == prior:
            raise InvalidIndexOperation(f"cannot merge record {prior.authority}|{prior.mrn} into itself")
        survivor_record, created = self._apply(survivor, update)
        target = survivor_record.patient_id
        prior_record = self._repo.get_record(prior)
        if prior_record is None:
            # Remember the retired identifier so later messages naming it find the survivor.
            self._create(prior, Demographics(), self._now(), patient_id=target,
                         merged_into=survivor_record.id)
            return self._rerank([target], created_patient=target if created else None)
        if prior_record.merged_into == survivor_record.id:
            return self._rerank([target], created_patient=target if created else None)
        old_patient = prior_record.patient_id
        prior_record.merged_into = survivor_record.id
        prior_record.patient_id = target
        prior_record.updated_at = self._now()
        self._repo.record_changed(prior_record)
        affected = [target] if old_patient == target else [target, old_patient]
        if old_patient != target and not any(r.is_active for r in self._repo.records_of_patient(old_patient)):
            self._retire_patient(old_patient, target)
        return self._rerank(affected, created_patient=target if created else None)

    def _retire_patient(self, patient_id: str, survivor_id: str) -> None:
        patient = self._repo.get_patient(patient_id)
        if patient is not None:
            patient.merged_into = survivor_id
            self._repo.patient_changed(patient)

    # -- change identifier ----------------------------------------------------------------

    def change_identifier(self, old: RecordKey, new: RecordKey,
                          update: DemographicsUpdate) -> list[PatientChange]:
        """Move the facility's record from identifier ``old`` to ``new`` (HL7 A47)."""
        record = self._repo.get_record(old)
        if record is None or not record.is_active:
            raise UnknownRecord(f"no active record with identifier {old.authority}|{old.mrn}")
        holder = self._repo.get_record(new)
        if holder is not None and holder.id != record.id and holder.is_active:
            raise IdentifierInUse(f"identifier {new.authority}|{new.mrn} already belongs to another record")
        if holder is not None and holder.id != record.id:
            raise IdentifierInUse(f"identifier {new.authority}|{new.mrn} was retired by a merge")
        record.key = new
        demographics = update.apply_to(record.demographics)
        kept = tuple(i for i in demographics.identifiers if (i.authority, i.value) != (old.authority, old.mrn))
        record.demographics = _with_key_identifier(replace(demographics, identifiers=kept), new)
        record.updated_at = self._now()
        self._repo.record_changed(record, old_key=old)
        return self._rerank([record.patient_id])

    # -- ranking --------------------------------------------------------------------------

    def _rerank(self, patient_ids: list[str], created_patient: str | None) -> list[PatientChange]:
        changes = []
        for patient_id in patient_ids:
            change = self._rerank_one(patient_id, created=patient_id == created_patient)
            if change is not None:
                changes.append(change)
        return changes

    def _rerank_one(self, patient_id: str, *, created: bool) -> PatientChange | None:
        patient = self._repo.get_patient(patient_id)
        if patient is None:
            return None
        records = self._repo.records_of_patient(patient_id)
        best = best_demographics(records, self._tier_of)
        changed = _differences(patient.best, best.demographics)
        merged_now = patient.merged_into is not None and not any(r.is_active for r in records)
        if not changed and not created and not merged_now:
            return None
        patient.best = best.demographics
        patient.provenance = best.provenance
        patient.winner_facility = best.winner_facility
        patient.winner_tier = best.winner_tier
        patient.updated_at = self._now()
        self._repo.patient_changed(patient)
        return PatientChange(patient_id=patient_id, changed=changed,
                             identifiers=best.demographics.identifiers,
                             winner_facility=best.winner_facility, winner_tier=best.winner_tier,
                             created=created, merged_into=patient.merged_into,
                             record_ids=tuple(r.id for r in records))


def _with_key_identifier(demographics: Demographics, key: RecordKey) -> Demographics:
    """A record always carries the identifier it is keyed by."""
    if any((i.authority, i.value) == (key.authority, key.mrn) for i in demographics.identifiers):
        return demographics
    keyed = Identifier(key.mrn, key.authority, "MR")
    return replace(demographics, identifiers=(keyed, *demographics.identifiers))


def _differences(old: Demographics, new: Demographics) -> dict[str, tuple[Any, Any]]:
    if old == new:
        return {}
    old_json, new_json = old.to_dict(), new.to_dict()
    return {name: (old_json[name], new_json[name])
            for name in ("identifiers", *DEMOGRAPHIC_FIELDS) if old_json[name] != new_json[name]}
