"""Rows of the index's tables to and from the model's objects (shared by store and search)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from mpi.limits import BIRTH_DATE_KEY_CHARS, FAMILY_NAME_KEY_CHARS
from mpi.model import Demographics, Patient, RecordKey, SourceRecord

__all__ = ["IdentKey", "ident_rows", "patient_from_row", "patient_row", "record_from_row", "record_row"]

IdentKey = tuple[str, str]


def ident_rows(record: SourceRecord) -> dict[IdentKey, str]:
    """(authority, value) -> type code of every identifier the record carries."""
    rows: dict[IdentKey, str] = {}
    for ident in record.demographics.identifiers:
        rows.setdefault((ident.authority, ident.value), ident.type_code)
    return rows


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def record_row(record: SourceRecord) -> dict[str, Any]:
    """The ``mpi_source_records`` row of ``record`` (with its derived search keys)."""
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


def patient_row(patient: Patient) -> dict[str, Any]:
    """The ``mpi_patients`` row of ``patient``."""
    return {
        "id": patient.id, "merged_into": patient.merged_into,
        "best": patient.best.json_text, "provenance": _dumps(patient.provenance),
        "winner_facility": patient.winner_facility, "winner_tier": patient.winner_tier,
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
    )


def _utc(stamp: datetime) -> datetime:
    """Rows read through the driver directly carry the session's time zone: use UTC."""
    return stamp if stamp.tzinfo is UTC else stamp.astimezone(UTC)
