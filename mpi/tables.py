"""SQL tables of the patient index (SQLAlchemy Core), on a MetaData the engine extends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from mpi.limits import (
    AUTHORITY_CHARS,
    BIRTH_DATE_KEY_CHARS,
    FACILITY_CHARS,
    FAMILY_NAME_KEY_CHARS,
    IDENTIFIER_TYPE_CHARS,
    IDENTIFIER_VALUE_CHARS,
    RECORD_ID_CHARS,
)

__all__ = ["UtcDateTime", "identifiers", "metadata", "patients", "source_records"]

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
})


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, on PostgreSQL and SQLite alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("portalbridge stores aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stamp: datetime = value
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


ID = String(RECORD_ID_CHARS)

patients = Table(
    "mpi_patients", metadata,
    Column("id", ID, primary_key=True),
    Column("merged_into", ID, nullable=True),
    Column("best", Text, nullable=False),
    Column("provenance", Text, nullable=False),
    Column("winner_facility", String(FACILITY_CHARS), nullable=False),
    Column("winner_tier", Integer, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

source_records = Table(
    "mpi_source_records", metadata,
    Column("id", ID, primary_key=True),
    Column("patient_id", ID, nullable=False, index=True),
    Column("facility", String(FACILITY_CHARS), nullable=False),
    Column("authority", String(AUTHORITY_CHARS), nullable=False),
    Column("mrn", String(IDENTIFIER_VALUE_CHARS), nullable=False),
    Column("demographics", Text, nullable=False),
    # Search keys, derived from the demographics when the record is written.
    Column("family_name", String(FAMILY_NAME_KEY_CHARS), nullable=False),
    Column("birth_date", String(BIRTH_DATE_KEY_CHARS), nullable=False),
    Column("merged_into", ID, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    UniqueConstraint("facility", "authority", "mrn", name="uq_mpi_source_records_key"),
    Index("ix_mpi_source_records_family_birth", "family_name", "birth_date"),
)

#: Every identifier of every record (a record's own key among them), with the record's
#: patient: the one lookup that finds all a message needs, and cheap for the planner.
identifiers = Table(
    "mpi_identifiers", metadata,
    Column("record_id", ID, primary_key=True),
    Column("authority", String(AUTHORITY_CHARS), primary_key=True),
    Column("value", String(IDENTIFIER_VALUE_CHARS), primary_key=True),
    Column("type_code", String(IDENTIFIER_TYPE_CHARS), nullable=False),
    Column("patient_id", ID, nullable=False),
    Index("ix_mpi_identifiers_lookup", "authority", "value"),
)
