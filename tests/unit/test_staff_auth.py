"""The staff-token dependency of the HTTP routes, on a small app with in-memory doubles."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

import pytest
from fastapi import Depends, FastAPI

from engine.errors import StoreUnavailable
from engine.staff import Role, StaffEntry, StaffPrincipal
from inbound.http.auth import StaffAuth
from tests.fakes import InMemoryAuditLog, InMemoryStaffDirectory

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # Starlette's TestClient suggests httpx2
    from fastapi.testclient import TestClient

REALM = 'Bearer realm="portalbridge"'


class Setup:
    def __init__(self) -> None:
        self.directory = InMemoryStaffDirectory()
        self.audit = InMemoryAuditLog()
        auth = StaffAuth(self.directory, self.audit)
        app = FastAPI()

        enrolling_staff = Depends(auth.requires(Role.DIRECT_ENROLLMENT_USER))

        @app.get("/enroll")
        def enroll(staff: StaffPrincipal = enrolling_staff) -> dict[str, str]:
            return {"name": staff.name}

        self.client = TestClient(app)

    def token(self, *roles: Role, name: str = "maria") -> str:
        return self.directory.add(name, frozenset(roles))[1]


@pytest.fixture
def setup() -> Iterator[Setup]:
    made = Setup()
    yield made
    made.client.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_right_role_is_let_in_as_itself(setup: Setup) -> None:
    reply = setup.client.get("/enroll", headers=bearer(setup.token(Role.DIRECT_ENROLLMENT_USER)))
    assert reply.status_code == 200 and reply.json() == {"name": "maria"}
    admin = setup.token(Role.ADMINISTRATOR, name="root")
    assert setup.client.get("/enroll", headers=bearer(admin)).json() == {"name": "root"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": ""}, {"Authorization": "Bearer"},
                                     {"Authorization": "Basic bWFyaWE6c2VjcmV0"},
                                     {"Authorization": "Token pbs_abc"}])
def test_no_bearer_token_is_401_with_a_challenge(setup: Setup, headers: dict[str, str]) -> None:
    reply = setup.client.get("/enroll", headers=headers)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == REALM
    assert "Authorization: Bearer <token>" in reply.json()["detail"]


def test_an_unknown_or_revoked_token_is_401_invalid_token(setup: Setup) -> None:
    token = setup.token(Role.DIRECT_ENROLLMENT_USER)
    for presented in ("pbs_" + "A" * 43, "garbage", token[:-1]):
        reply = setup.client.get("/enroll", headers=bearer(presented))
        assert reply.status_code == 401, presented
        assert reply.headers["WWW-Authenticate"] == f'{REALM}, error="invalid_token"'
        assert reply.json() == {"detail": "the bearer token is unknown or revoked"}
    setup.directory.revoke("maria")
    assert setup.client.get("/enroll", headers=bearer(token)).status_code == 401


def test_a_missing_role_is_403_naming_the_roles_and_is_audited(setup: Setup) -> None:
    token = setup.token(Role.MEMBER_ACCOUNT_MANAGER, Role.ACCOUNT_STATUS_CLIENT)
    reply = setup.client.get("/enroll", headers=bearer(token))
    assert reply.status_code == 403
    assert reply.json()["detail"] == ("maria holds none of the roles this needs: "
                                      "Direct Enrollment User, administrator")
    [record] = setup.audit.records
    assert (record.entry.actor, record.entry.action, record.entry.outcome) == (
        "staff:maria", "access.refused", "refused")
    assert record.entry.detail == {"route": "GET /enroll"}


def test_a_directory_that_cannot_be_read_is_503(setup: Setup) -> None:
    class Unavailable(InMemoryStaffDirectory):
        def _find_by_digest(self, digest: str) -> tuple[StaffEntry, str] | None:
            raise StoreUnavailable("database unavailable (OperationalError)")

    auth = StaffAuth(Unavailable())
    app = FastAPI()
    app.get("/x", dependencies=[Depends(auth.requires(Role.ADMINISTRATOR))])(lambda: {})
    with TestClient(app) as client:
        reply = client.get("/x", headers=bearer("pbs_" + "B" * 43))
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "5"


def test_tokens_never_reach_the_logs(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    good = setup.token(Role.MEMBER_ACCOUNT_MANAGER)
    unknown = "pbs_" + "C" * 43
    setup.client.get("/enroll", headers=bearer(good))
    setup.client.get("/enroll", headers=bearer(unknown))
    assert caplog.records, "refusals are logged"
    for text in (good, unknown, good[4:20], unknown[4:20]):
        assert all(text not in record.getMessage() for record in caplog.records)


def test_a_route_must_name_its_roles() -> None:
    with pytest.raises(ValueError, match="name the roles"):
        StaffAuth(InMemoryStaffDirectory()).requires()
