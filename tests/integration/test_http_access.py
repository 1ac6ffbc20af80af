"""Who may call which staff route: one table, checked against the real app.

Every route under the prefixes in ``STAFF_PREFIXES`` must have a row in ``GUARDED`` (a test
below fails when one has none). Each row is checked five ways: no token (401), an unknown
token (401), a revoked token (401), each role the row does not admit (403), and each role it
admits, administrator included (the row's ``expect``). Adding a route means adding a row.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from engine.bootstrap import Runtime, build_runtime, http_app
from engine.config import Settings
from engine.staff import Role
from engine.store.database import open_database
from engine.store.migrate import upgrade
from engine.store.tables import metadata
from tests.conftest import TEST_RULES_YAML
from tests.fakes import TEST_SECRET_KEY

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # Starlette's TestClient suggests httpx2
    from fastapi.testclient import TestClient

STAFF_PREFIXES = ("/mpi", "/workbench", "/accounts")
MPI_READERS = frozenset({Role.DIRECT_ENROLLMENT_USER, Role.MEMBER_ACCOUNT_MANAGER,
                         Role.ENROLLMENT_REQUEST_AGENT, Role.ENROLLMENT_EXCEPTION_AGENT})
AUDIT_READERS = frozenset({Role.MEMBER_ACCOUNT_MANAGER})
ADMINISTRATORS_ONLY: frozenset[Role] = frozenset()
ENROLLERS = frozenset({Role.DIRECT_ENROLLMENT_USER})
AUTOMATED = frozenset({Role.ENROLLMENT_REQUEST_AGENT, Role.DIRECT_ENROLLMENT_USER})
MANAGERS = frozenset({Role.MEMBER_ACCOUNT_MANAGER})
STATUS = frozenset({Role.ACCOUNT_STATUS_CLIENT, Role.MEMBER_ACCOUNT_MANAGER})
LETTER_PRINTERS = frozenset({Role.DIRECT_ENROLLMENT_USER, Role.MEMBER_ACCOUNT_MANAGER})
NOBODY = "/workbench/members/nobody"


@dataclass(frozen=True)
class Guarded:
    """A staff route, the roles it admits (administrator always, besides) and the status an
    admitted caller gets with ``path``/``params``/``json`` (the route itself when no path)."""

    method: str
    route: str
    roles: frozenset[Role]
    expect: int = 200
    path: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None

    @property
    def admitted(self) -> frozenset[Role]:
        return self.roles | {Role.ADMINISTRATOR}

    def __str__(self) -> str:
        return f"{self.method} {self.route}"


GUARDED = [
    Guarded("GET", "/mpi/patients", MPI_READERS, params={"identifier": "GHH|1"}),
    Guarded("GET", "/mpi/patients/{patient_id}", MPI_READERS, 404, path="/mpi/patients/nobody"),
    Guarded("GET", "/workbench/audit", AUDIT_READERS, params={"action": "staff.*", "since": "1h"}),
    Guarded("GET", "/workbench/messages", ADMINISTRATORS_ONLY, params={"outcome": "AR", "since": "1h"}),
    Guarded("GET", "/workbench/messages/{message_id}", ADMINISTRATORS_ONLY, 404,
            path="/workbench/messages/999999"),
    Guarded("GET", "/workbench/patients", ENROLLERS, params={"identifier": "GHH|1"}),
    Guarded("POST", "/workbench/enrollments", ENROLLERS, 404, json={"identifier": "GHH|none"}),
    Guarded("POST", "/workbench/enrollments/automated", AUTOMATED,
            json=[{"identifier": "GHH|none"}, {"identifier": "bad"}]),
    Guarded("GET", "/workbench/members", MANAGERS, params={"status": "pending"}),
    Guarded("GET", "/workbench/members/{member_id}", MANAGERS, 404, path=NOBODY),
    Guarded("POST", "/workbench/members/{member_id}/token/resend", MANAGERS, 404,
            path=f"{NOBODY}/token/resend"),
    Guarded("POST", "/workbench/members/{member_id}/token/renew", MANAGERS, 404,
            path=f"{NOBODY}/token/renew", json={"reason": "r", "hours": 5}),
    Guarded("POST", "/workbench/members/{member_id}/token/regenerate", MANAGERS, 404,
            path=f"{NOBODY}/token/regenerate", json={"reason": "r", "days": 1, "notify": True}),
    Guarded("POST", "/workbench/members/{member_id}/deactivate", MANAGERS, 404,
            path=f"{NOBODY}/deactivate", json={"reason": "r"}),
    Guarded("POST", "/workbench/members/{member_id}/reactivate", MANAGERS, 404,
            path=f"{NOBODY}/reactivate", json={"reason": "r"}),
    Guarded("PATCH", "/workbench/members/{member_id}/preferences", MANAGERS, 404,
            path=f"{NOBODY}/preferences", json={"reason": "r", "locale": "es-US"}),
    Guarded("POST", "/workbench/members/{member_id}/password-reset", MANAGERS, 404,
            path=f"{NOBODY}/password-reset", json={"reason": "r"}),
    Guarded("POST", "/workbench/members/{member_id}/unlock", MANAGERS, 404,
            path=f"{NOBODY}/unlock", json={"reason": "r"}),
    Guarded("GET", "/workbench/members/{member_id}/activation-letter", LETTER_PRINTERS, 404,
            path=f"{NOBODY}/activation-letter", params={"reason": "r"}),
    Guarded("GET", "/accounts/status", STATUS, 404, params={"identifier": "GHH|none"}),
]


@dataclass
class App:
    api: FastAPI
    client: TestClient
    runtime: Runtime
    tokens: dict[Role, str]
    revoked: str


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """The real app with one staff member per role and one revoked administrator."""
    folder = tmp_path_factory.mktemp("access")
    (folder / "routing.yaml").write_text(TEST_RULES_YAML, encoding="utf-8")
    url = _empty_database(request, folder)
    runtime = build_runtime(Settings(secret_key=TEST_SECRET_KEY, database_url=url,
                                     config_path=folder / "routing.yaml"))
    tokens = {role: runtime.staff.add(f"only-{role.name.lower()}", frozenset({role}))[1] for role in Role}
    revoked = runtime.staff.add("gone", frozenset(Role))[1]
    runtime.staff.revoke("gone")
    runtime.committer.start()  # the membership routes apply their commands through it
    try:
        api = http_app(runtime)
        with TestClient(api) as client:
            yield App(api, client, runtime, tokens, revoked)
    finally:
        runtime.committer.stop()
        runtime.database.dispose()


def _empty_database(request: pytest.FixtureRequest, folder: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{folder / 'access.db'}"
    url: str = request.getfixturevalue("postgres_url")
    database = open_database(url)
    upgrade(database)
    with database.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)} RESTART IDENTITY"))
    database.dispose()
    return url


def call(app: App, row: Guarded, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return app.client.request(row.method, row.path or row.route, params=row.params, json=row.json,
                              headers=headers)


def test_every_staff_route_has_a_row_and_documents_its_token(app: App) -> None:
    paths = app.api.openapi()["paths"]
    served = {f"{method.upper()} {path}": operation for path, operations in paths.items()
              if path.startswith(STAFF_PREFIXES) for method, operation in operations.items()}
    assert set(served) == {str(row) for row in GUARDED}
    assert all(operation["security"] == [{"staff token": []}] for operation in served.values())


@pytest.mark.parametrize("row", GUARDED, ids=str)
def test_no_token_is_401(app: App, row: Guarded) -> None:
    reply = call(app, row, None)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="portalbridge"'
    assert "Bearer" in reply.json()["detail"]


@pytest.mark.parametrize("row", GUARDED, ids=str)
def test_an_unknown_token_is_401(app: App, row: Guarded) -> None:
    for token in ("pbs_" + "x" * 43, "not-even-shaped-like-one"):
        reply = call(app, row, token)
        assert reply.status_code == 401
        assert reply.json() == {"detail": "the bearer token is unknown or revoked"}


@pytest.mark.parametrize("row", GUARDED, ids=str)
def test_a_revoked_token_is_401(app: App, row: Guarded) -> None:
    reply = call(app, row, app.revoked)
    assert reply.status_code == 401
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]


@pytest.mark.parametrize("row", GUARDED, ids=str)
def test_a_role_not_admitted_is_403(app: App, row: Guarded) -> None:
    refused = [role for role in Role if role not in row.admitted]
    assert refused, "every row should have a role to refuse"
    for role in refused:
        reply = call(app, row, app.tokens[role])
        assert reply.status_code == 403, (role, reply.text)
        assert all(admitted.value in reply.json()["detail"] for admitted in row.admitted)


@pytest.mark.parametrize("row", GUARDED, ids=str)
def test_each_admitted_role_gets_through(app: App, row: Guarded) -> None:
    for role in row.admitted:
        reply = call(app, row, app.tokens[role])
        assert reply.status_code == row.expect, (role, reply.text)
