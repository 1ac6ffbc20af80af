"""Alembic migrations, run programmatically (``portalbridge db upgrade`` and embedded serve)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

__all__ = ["pending_revision", "upgrade"]


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database behind ``engine`` to ``revision``."""
    config = Config()
    config.set_main_option("script_location", "engine:migrations")
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # A migration may rewrite a large table: the sessions' statement timeout (a bound
            # for messages, PORTALBRIDGE_DB_STATEMENT_TIMEOUT) does not apply to it.
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def pending_revision(engine: Engine) -> str | None:
    """The head revision when the database is behind it, else None."""
    config = Config()
    config.set_main_option("script_location", "engine:migrations")
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return None if current == head else head
