"""The Alembic migrations build exactly the tables the code defines, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from engine.store.migrate import pending_revision, upgrade
from engine.store.tables import metadata


def test_migrated_schema_matches_the_table_definitions(database: Engine) -> None:
    with database.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
    assert pending_revision(database) is None
    upgrade(database)  # running it again changes nothing
    assert pending_revision(database) is None
