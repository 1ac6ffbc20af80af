"""The index's operations: upsert a source record, merge two records, change an identifier.

Each operation checks everything it needs before it changes anything, so an ``MpiError``
leaves the repository as it was. Each returns the ``PatientChange`` of every patient whose
best demographics (or merge state) moved, which the engine turns into ``mpi.changed`` events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mpi.errors import (
    IdentifierInUse,
    InvalidIndexOperation,
    RecordExists,
    UnknownRecord,
    VersionConflict,
)
from mpi.keys import record_named, records_under
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

__all__ = ["PatientChange", "PatientIndex", "PutResult"]


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
    #: Patients merged into this one by the operation.
    merged_from: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PutResult:
    """The record a ``put`` left behind, whether it was new, and whether anything changed."""

    record: SourceRecord
    created: bool
    changed: bool
    changes: list[PatientChange]


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
        sent = update.values.identifiers if "identifiers" in update.present else ()
        record = record_named(self._repo, key, sent)
        if record is None:
            return self._create(key, update.apply_to(Demographics()), self._now())
        self._change(record, _with_key_identifier(update.apply_to(record.demographics), record.key))
        return record, False

    def _change(self, record: SourceRecord, demographics: Demographics,
                old_key: RecordKey | None = None) -> bool:
        """Store new data on a record. An update that changes nothing is not an update: it
        moves neither the version nor the update time that ranking looks at."""
        if demographics == record.demographics and old_key is None:
            return False
        record.demographics = demographics
        record.updated_at = self._now()
        record.version += 1
        self._repo.record_changed(record, old_key=old_key)
        return True

    def _create(self, key: RecordKey, demographics: Demographics, now: datetime, *,
                patient_id: str | None = None, merged_into: str | None = None,
                record_id: str | None = None) -> tuple[SourceRecord, bool]:
        demographics = _with_key_identifier(demographics, key)
        if patient_id is None:
            patient_id = self._linked_patient(demographics.identifiers)
        created = patient_id is None
        if patient_id is None:
            patient_id = self._new_id()
            self._repo.add_patient(Patient(id=patient_id, created_at=now, updated_at=now))
        record = SourceRecord(id=record_id or self._new_id(), key=key, patient_id=patient_id,
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

    def merge(self, survivor: RecordKey, prior: RecordKey, update: DemographicsUpdate,
              prior_identifiers: tuple[Identifier, ...] = ()) -> list[PatientChange]:
        """Merge the facility's record ``prior`` into ``survivor`` (created if unknown).

        Every record of the facility under ``prior`` or any of ``prior_identifiers`` (the
        sender's list of the non-surviving record's numbers) is merged. A prior record keeps
        its data for the audit trail but no longer ranks; its patient is merged into the
        survivor's when it has no other active record left. When no prior record exists,
        one is remembered, retired, with all of the identifiers, so that later messages
        naming any of them find the survivor.
        """
        if survivor == prior:
            raise InvalidIndexOperation(f"cannot merge record {prior.authority}|{prior.mrn} into itself")
        existing = self._repo.get_record(survivor)
        if existing is not None and not existing.is_active:
            raise InvalidIndexOperation(
                f"surviving identifier {survivor.authority}|{survivor.mrn} was itself merged away")
        priors = records_under(self._repo, prior, prior_identifiers)
        survivor_record, created = self._apply(survivor, update)
        target = survivor_record.patient_id
        created_patient = target if created else None
        priors = [r for r in priors if r.id != survivor_record.id]
        if not priors and self._repo.get_record(prior) is not None:
            raise InvalidIndexOperation(f"cannot merge record {prior.authority}|{prior.mrn} into itself")
        if not priors:
            remembered = Demographics(identifiers=tuple(i for i in prior_identifiers if i.authority))
            self._create(prior, remembered, self._now(), patient_id=target,
                         merged_into=survivor_record.id)
            return self._rerank([target], created_patient=created_patient)
        changes: list[PatientChange] = []
        for prior_record in priors:
            if prior_record.merged_into != survivor_record.id:
                changes += self._merge_record(prior_record, survivor_record, created=created)
        return changes or self._rerank([target], created_patient=created_patient)

    def merge_records(self, prior_id: str, survivor_id: str) -> list[PatientChange]:
        """Merge record ``prior_id`` into ``survivor_id`` (FHIR ``link`` replaced-by/replaces)."""
        prior, survivor = self._repo.get_record_by_id(prior_id), self._repo.get_record_by_id(survivor_id)
        if prior is None or survivor is None:
            raise UnknownRecord(f"no record {prior_id if prior is None else survivor_id}")
        if prior.id == survivor.id:
            raise InvalidIndexOperation(f"cannot merge record {prior.id} into itself")
        if not survivor.is_active:
            raise InvalidIndexOperation(f"record {survivor.id} was itself merged away")
        if prior.merged_into == survivor.id:
            return []
        return self._merge_record(prior, survivor, created=False)

    def _merge_record(self, prior: SourceRecord, survivor: SourceRecord, *,
                      created: bool) -> list[PatientChange]:
        target, old_patient = survivor.patient_id, prior.patient_id
        prior.merged_into = survivor.id
        prior.patient_id = target
        prior.updated_at = self._now()
        prior.version += 1
        self._repo.record_changed(prior)
        if old_patient == target:
            return self._rerank([target], created_patient=target if created else None)
        retired = not any(r.is_active for r in self._repo.records_of_patient(old_patient))
        if retired:
            self._retire_patient(old_patient, target)
        return self._rerank([target, old_patient], created_patient=target if created else None,
                            merged_from={target: (old_patient,)} if retired else None)

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
        retired = (old.authority, old.mrn)
        kept = tuple(i for i in demographics.identifiers if (i.authority, i.value) != retired)
        self._change(record, _with_key_identifier(replace(demographics, identifiers=kept), new), old)
        return self._rerank([record.patient_id], created_patient=None)

    # -- resource-style writes (FHIR) ---------------------------------------------------

    def put(self, record_id: str | None, key: RecordKey, demographics: Demographics, *,
            expected_version: int | None = None) -> PutResult:
        """Create or replace a whole record, as FHIR create and update do.

        Without ``record_id`` (create) an existing record under ``key`` with the same data is
        returned unchanged (a resend), and one with other data is a ``RecordExists``. With
        ``record_id`` (update, or create under the client's id) the record may also move to
        a new key, and ``expected_version`` guards against lost updates.
        """
        demographics = _with_key_identifier(demographics, key)
        holder = self._repo.get_record(key)
        if record_id is None:
            return self._put_new(key, demographics, holder)
        record = self._repo.get_record_by_id(record_id)
        if record is None and expected_version is not None:
            raise VersionConflict(
                f"record {record_id} does not exist (version {expected_version} expected)")
        if holder is not None and (record is None or holder.id != record.id):
            raise IdentifierInUse(f"identifier {key.authority}|{key.mrn} belongs to record {holder.id}")
        if record is not None and record.key.facility != key.facility:
            # A record is its facility's: another facility replacing it would also take its tier.
            raise IdentifierInUse(f"record {record.id} belongs to facility {record.key.facility}, "
                                  f"not {key.facility}")
        if record is None:
            return self._put_created(key, demographics, record_id)
        if expected_version is not None and record.version != expected_version:
            raise VersionConflict(
                f"record {record.id} is at version {record.version}, not {expected_version}")
        if not record.is_active:
            raise InvalidIndexOperation(f"record {record.id} was merged into {record.merged_into}")
        old_key = record.key if record.key != key else None
        record.key = key
        changed = self._change(record, demographics, old_key)
        changes = self._rerank([record.patient_id], None) if changed else []
        return PutResult(record, False, changed, changes)

    def _put_new(self, key: RecordKey, demographics: Demographics,
                 holder: SourceRecord | None) -> PutResult:
        if holder is None:
            return self._put_created(key, demographics, None)
        if holder.is_active and holder.demographics == demographics:
            return PutResult(holder, False, False, [])
        raise RecordExists(f"identifier {key.authority}|{key.mrn} already belongs to record {holder.id}",
                           holder.id)

    def _put_created(self, key: RecordKey, demographics: Demographics,
                     record_id: str | None) -> PutResult:
        record, created = self._create(key, demographics, self._now(), record_id=record_id)
        return PutResult(record, True, True,
                         self._rerank([record.patient_id], record.patient_id if created else None))

    def active_records_with(self, identifier: Identifier) -> list[SourceRecord]:
        """Active records carrying ``identifier`` (for conditional creates)."""
        return [r for r in self._repo.records_with_identifier(identifier) if r.is_active]

    # -- ranking --------------------------------------------------------------------------

    def _rerank(self, patient_ids: list[str], created_patient: str | None,
                merged_from: dict[str, tuple[str, ...]] | None = None) -> list[PatientChange]:
        changes = []
        for patient_id in patient_ids:
            change = self._rerank_one(patient_id, created=patient_id == created_patient,
                                      merged_from=(merged_from or {}).get(patient_id, ()))
            if change is not None:
                changes.append(change)
        return changes

    def _rerank_one(self, patient_id: str, *, created: bool,
                    merged_from: tuple[str, ...] = ()) -> PatientChange | None:
        patient = self._repo.get_patient(patient_id)
        if patient is None:
            return None
        records = self._repo.records_of_patient(patient_id)
        best = best_demographics(records, self._tier_of)
        changed = _differences(patient.best, best.demographics)
        merged_now = patient.merged_into is not None and not any(r.is_active for r in records)
        if not changed and not created and not merged_now and not merged_from:
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
                             merged_from=merged_from)


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
