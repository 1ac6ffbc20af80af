"""Shared fixtures: real databases for integration tests, fakes for unit tests.

PostgreSQL and RabbitMQ are required services: when one cannot be reached the tests that
need it fail with a message saying how to start it. They never skip: a green run must mean
the code was exercised against the real thing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from engine.rules import RoutingRules, parse_rules
from engine.store.database import open_database
from engine.store.migrate import upgrade
from engine.store.tables import metadata

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "samples"
CORPUS = SAMPLES / "corpus"
HL7_CORPUS = CORPUS / "hl7v2"
FHIR_CORPUS = CORPUS / "fhir"

# The SMTP server every notification test delivers to (fixture ``smtp_server``).
pytest_plugins = ["tests.smtp_server"]

POSTGRES_ADMIN_URL = os.environ.get(
    "PORTALBRIDGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

TEST_RULES_YAML = """
version: 1
facilities:
  - {code: GHH, name: Good Health Hospital, tier: 1, assigning_authority: GHH,
     aliases: [GHHSFacility, "2.16.840.1.122848.1.30", "GOOD HEALTH HOSPITAL"]}
  - {code: CLINIC, name: Community Clinic, tier: 2, assigning_authority: CLN,
     aliases: ["Ntierprise Clinic"]}
  - {code: LAB, name: Reference Lab, tier: 3, assigning_authority: LAB}
  - {code: SENDFAC, name: hl7apy sample facility, tier: 5, aliases: ["SEND FAC"]}
senders: []
events: {mpi_changed_for: all_patients}   # these tests predate membership: every patient
routes:
  - {name: updates, match: {message_type: ADT, trigger: [A01, A04, A05, A08, A28, A31]},
     action: upsert_patient}
  - {name: merges, match: {message_type: ADT, trigger: [A18, A30, A34, A35, A36, A39, A40]},
     action: merge_patients}
  - {name: identifier changes, match: {message_type: ADT, trigger: A47},
     action: change_identifier}
  - {name: other adt, match: {message_type: ADT}, action: ignore, reason: not used}
  - {name: the rest, match: {message_type: "*"}, action: reject, reason: ADT only}
"""


@pytest.fixture(scope="session")
def rules() -> RoutingRules:
    """Routing rules that know the facilities of the public corpus."""
    return parse_rules(TEST_RULES_YAML)


@pytest.fixture(scope="session")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "routing.yaml"
    path.write_text(TEST_RULES_YAML, encoding="utf-8")
    return path


# -- databases ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated to head, dropped afterwards."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"pb_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {POSTGRES_ADMIN_URL} ({exc.orig}); start it with "
                    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = open_database(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f"""SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                              WHERE datname = '{name}' AND pid <> pg_backend_pid()"""))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, then the PostgreSQL test database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'portalbridge.db'}"
        engine = open_database(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    url = request.getfixturevalue("postgres_url")
    engine = open_database(url)
    _truncate_all(engine)
    engine.dispose()
    yield url


@pytest.fixture
def database(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()
