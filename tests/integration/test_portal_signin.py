"""Signing in over HTTP on PostgreSQL, with the real engine and the test SMTP server:
activation, two-factor codes read from the delivered e-mail, sessions, the profile, password
resets, and a real lock and unlock in seconds."""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from engine.store.tables import outbox
from membership.passwords import Hashers, Verification
from tests.integration.engine_harness import (
    MllpConnection,
    RunningEngine,
    msa,
    running_engine,
    staff_headers,
)
from tests.integration.membership_support import ENROLL_RULES, registration
from tests.smtp_server import Received, SmtpServer

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

COMPONENTS = frozenset({"listen", "api", "relay", "enrollment", "notifier", "scheduler"})
PASSWORD = "Sunny7days"
FIELDS = {"ssn": "123-45-6789", "mothers_maiden_name": "smith"}


def rules(tmp_path: Path, membership: str) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(ENROLL_RULES.replace("version: 1", "version: 1\nmembership:\n"
                                         "  password: {iterations: 1000}\n" + membership)
                    .replace("events: {mpi_changed_for: members}",
                             "events: {mpi_changed_for: members, publish: [member.enrolled, "
                             "member.activated, member.password_changed, member.locked, "
                             "member.unlocked]}"), encoding="utf-8")
    return path


def mail(smtp: SmtpServer, subject_word: str, to: str = "ann@example.org", count: int = 1,
         timeout: float = 20.0) -> list[Received]:
    """The delivered messages to ``to`` whose text mentions ``subject_word``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in smtp.received if to in r.recipients
                 and subject_word.lower() in str(r.message["Subject"]).lower()]
        if len(found) >= count:
            return found
        time.sleep(0.05)
    subjects = [str(r.message["Subject"]) for r in smtp.received]
    raise AssertionError(f"no {count} '{subject_word}' mail(s) to {to}; received {subjects}")


@dataclass
class Portal:
    engine: RunningEngine
    http: httpx.Client
    smtp: SmtpServer

    def sign_in(self, username: str = "ann.doe", password: str = PASSWORD) -> httpx.Response:
        return self.http.post("/portal/sessions", json={"username": username, "password": password})


@pytest.fixture
def pg(pg_engine: object, postgres_url: str) -> str:
    """The PostgreSQL test database, emptied for this test."""
    return postgres_url


def _code(text: str, length: int) -> str:
    match = re.search(rf"(?<![A-Z0-9])([A-Z2-7]{{{length}}}|[0-9]{{{length}}})(?![A-Z0-9])", text)
    assert match, text
    return match.group(1)


@contextmanager
def portal(postgres_url: str, tmp_path: Path, smtp: SmtpServer, membership: str = "") -> Iterator[Portal]:
    """The engine on PostgreSQL, mail to the test SMTP server, and one active member ann.doe."""
    path = rules(tmp_path, membership)
    with running_engine(postgres_url, path, COMPONENTS, mail_url=smtp.url,
                        scheduler_interval=0.2) as engine, \
            httpx.Client(base_url=engine.http, timeout=20) as http:
        p = Portal(engine, http, smtp)
        add_member(p, "8001", "ann@example.org", "ann.doe")
        yield p


def add_member(p: Portal, mrn: str, address: str, username: str) -> None:
    """Register patient ``mrn`` over MLLP, read the activation code mailed to ``address``,
    activate the account."""
    conn = MllpConnection(p.engine.mllp_port)
    assert msa(conn.exchange(registration(f"S{mrn}", mrn, email_address=address)))[1] == "AA"
    conn.close()
    [activation] = mail(p.smtp, "activate", to=address)
    token = _code(activation.body("plain"), 26)
    done = p.http.post("/portal/activation", json={"token": token, "fields": FIELDS,
                                                   "username": username, "password": PASSWORD})
    assert done.status_code == 200, done.text


def test_two_factor_sign_in_profile_sign_out_and_password_reset(
        pg: str, tmp_path: Path, smtp_server: SmtpServer) -> None:
    with portal(pg, tmp_path, smtp_server, "  two_factor: {enabled: true}\n") as p:
        started = p.sign_in()
        assert started.status_code == 202, started.text
        challenge = started.json()["challenge"]
        [code_mail] = mail(p.smtp, "sign-in code")
        code = _code(code_mail.body("plain"), 6)
        wrong = str((int(code) + 1) % 10 ** 6).zfill(6)
        otp = {"challenge": challenge, "code": wrong}
        assert p.http.post("/portal/sessions/otp", json=otp).status_code == 401
        signed = p.http.post("/portal/sessions/otp", json=otp | {"code": code})
        assert signed.status_code == 201, signed.text
        assert p.http.post("/portal/sessions/otp", json=otp | {"code": code}).status_code == 401
        bearer = {"Authorization": f"Bearer {signed.json()['session']}"}

        me = p.http.get("/portal/me", headers=bearer)
        assert me.status_code == 200 and me.json()["username"] == "ann.doe"
        assert me.json()["demographics"]["names"]
        changed = p.http.put("/portal/profile", headers=bearer, json={
            "email": "ann.new@example.org", "address": {"lines": ["2 Elm St"], "city": "Salem"}})
        assert changed.status_code == 200, changed.text
        assert changed.json()["preferences"]["email"] == "ann.new@example.org"
        assert changed.json()["demographics"]["addresses"][0]["city"] == "Salem"
        [told] = mail(p.smtp, "contact details", to="ann@example.org")
        assert "ann.new@example.org" not in told.body("plain")  # the old address hears of it only

        assert p.http.delete("/portal/sessions/current", headers=bearer).status_code == 204
        assert p.http.get("/portal/me", headers=bearer).status_code == 401

        asked = p.http.post("/portal/password-resets", json={"email": "ann.new@example.org"})
        nobody = p.http.post("/portal/password-resets", json={"username": "nobody.here"})
        assert asked.status_code == nobody.status_code == 202 and asked.json() == nobody.json()
        [reset_mail] = mail(p.smtp, "new", to="ann.new@example.org")
        reset = _code(reset_mail.body("plain"), 26)
        weak = p.http.post(f"/portal/password-resets/{reset}", json={"password": "password"})
        assert weak.status_code == 422
        reused = p.http.post(f"/portal/password-resets/{reset}", json={"password": PASSWORD})
        assert reused.status_code == 422 and "last" in reused.text
        done = p.http.post(f"/portal/password-resets/{reset}", json={"password": "Brand9new"})
        assert done.status_code == 200, done.text
        again = p.http.post(f"/portal/password-resets/{reset}", json={"password": "Other9new"})
        assert again.status_code == 400  # single use
        assert p.sign_in(password="Brand9new").status_code == 202
        with p.engine.runtime.database.connect() as conn:
            keys = [r[0] for r in conn.execute(select(outbox.c.routing_key))]
        assert "member.password_changed" in keys


def test_a_real_lock_and_unlock_in_seconds(pg: str, tmp_path: Path,
                                           smtp_server: SmtpServer) -> None:
    lockout = ("  lockout:\n    time_based: {failures: 3, window: 30s, lock: 2s}\n"
               "    messages: {timed: 'Locked until {until}. Wait, or reset your password.'}\n")
    with portal(pg, tmp_path, smtp_server, lockout) as p:
        unknown = p.sign_in(username="no.such.user", password="Wrong1pass")
        for _ in range(3):
            wrong = p.sign_in(password="Wrong1pass")
            assert (wrong.status_code, wrong.json()) == (unknown.status_code, unknown.json()) == \
                (401, {"detail": "the username or password is not correct"})
        locked = p.sign_in()
        assert locked.status_code == 423, locked.text
        assert locked.json()["detail"]["message"].startswith("Locked until 20")
        wrong = p.sign_in(password="Wrong1pass")  # invalid credentials: only the generic answer
        assert (wrong.status_code, wrong.json()) == (unknown.status_code, unknown.json())
        time.sleep(2.1)
        signed = p.sign_in()
        assert signed.status_code == 201
        member_id = signed.json()["member_id"]
        for _ in range(3):
            p.sign_in(password="Wrong1pass")
        manager = staff_headers(p.engine.runtime)
        details = p.http.get(f"/workbench/members/{member_id}", headers=manager).json()
        assert details["lock"]["mechanism"] == "time-based"
        unlocked = p.http.post(f"/workbench/members/{member_id}/unlock", headers=manager,
                               json={"reason": "verified by phone"})
        assert unlocked.status_code == 200 and unlocked.json()["lock"] is None
        assert p.sign_in().status_code == 201  # at once, not after the lock's time
        with p.engine.runtime.database.connect() as conn:
            rows = conn.execute(select(outbox.c.routing_key, outbox.c.data)
                                .where(outbox.c.routing_key.in_(["member.locked", "member.unlocked"]))
                                .order_by(outbox.c.id)).all()
        assert [r[0] for r in rows] == ["member.locked", "member.unlocked"] * 2


class CountingHashers(Hashers):
    """The engine's hashers, recording what every check verified against."""

    def __init__(self, real: Hashers) -> None:
        super().__init__(real.preferred)
        self.checked: list[str] = []

    def check(self, secret: str, encoded: str) -> Verification:
        algorithm, iterations = encoded.split("$")[:2]
        self.checked.append(f"{algorithm}${iterations}")
        return super().check(secret, encoded)


def test_unknown_users_cost_one_verification_of_the_same_hash_as_wrong_passwords(
        pg: str, tmp_path: Path, smtp_server: SmtpServer) -> None:
    with portal(pg, tmp_path, smtp_server) as p:
        runtime = p.engine.runtime
        counting = CountingHashers(runtime.hashers)
        runtime.hashers, runtime.decoy = counting, None
        from engine.bootstrap import http_app

        with TestClient(http_app(runtime)) as client:
            body = {"username": "no.such.user", "password": "Wrong1pass"}
            unknown = client.post("/portal/sessions", json=body)
            unknown_work = list(counting.checked)
            counting.checked.clear()
            wrong = client.post("/portal/sessions", json=body | {"username": "ann.doe"})
            wrong_work = list(counting.checked)
        assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())
        assert unknown_work == wrong_work == ["pbkdf2_sha256$1000"]


def test_bad_bodies_get_clear_4xx_answers(pg: str, tmp_path: Path,
                                          smtp_server: SmtpServer) -> None:
    with portal(pg, tmp_path, smtp_server) as p:
        http = p.http
        huge = http.post("/portal/sessions", content=b'{"username": "' + b"a" * 2_000_000 + b'"}',
                         headers={"Content-Type": "application/json"})
        assert huge.status_code == 413 and "larger than" in huge.text
        broken = http.post("/portal/sessions", content=b'{"username": ',
                           headers={"Content-Type": "application/json"})
        assert broken.status_code == 422 and "JSON" in broken.text
        assert http.post("/portal/sessions", json={"username": "ann.doe"}).status_code == 422
        assert http.post("/portal/sessions", json={"username": "x" * 151, "password": "p"}
                         ).status_code == 422
        extra = http.post("/portal/sessions", json={"username": "a", "password": "b", "admin": True})
        assert extra.status_code == 422
        assert http.post("/portal/sessions/otp", json={"challenge": "x", "code": "abc"}).status_code == 422
        assert http.post("/portal/password-resets", json={}).status_code == 422
        assert http.post("/portal/password-resets", json={"username": "a", "email": "a@b.c"}
                         ).status_code == 422
        assert http.put("/portal/profile", json={}).status_code == 401
        assert http.get("/portal/me", headers={"Authorization": "Bearer nope"}).status_code == 401


@pytest.mark.parametrize("allowed", [("locale",)])
def test_profile_fields_the_policy_does_not_allow_are_refused(
        pg: str, tmp_path: Path, smtp_server: SmtpServer, allowed: tuple[str, ...]) -> None:
    with portal(pg, tmp_path, smtp_server, f"  profile_updates: {list(allowed)}\n") as p:
        bearer = {"Authorization": f"Bearer {p.sign_in().json()['session']}"}
        refused = p.http.put("/portal/profile", headers=bearer, json={"email": "x@example.org"})
        assert refused.status_code == 403 and "email" in refused.text
        assert p.http.put("/portal/profile", headers=bearer, json={"locale": "es-US"}).status_code == 200


def test_many_wrong_passwords_at_once_lock_only_their_account(pg: str, tmp_path: Path,
                                                              smtp_server: SmtpServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with portal(pg, tmp_path, smtp_server) as p:
        add_member(p, "8002", "bob@example.org", "bob.roe")

        def attempt(n: int) -> int:
            username = "ann.doe" if n % 4 else f"nobody.{n}"
            with httpx.Client(base_url=p.engine.http, timeout=60) as http:
                return http.post("/portal/sessions", json={"username": username,
                                                           "password": f"Wrong{n}pass"}).status_code

        with ThreadPoolExecutor(16) as clients:
            attacks = [clients.submit(attempt, n) for n in range(200)]
            bob = clients.submit(lambda: p.sign_in("bob.roe").status_code)
            attacks += [clients.submit(attempt, n) for n in range(200, 400)]
            assert bob.result() == 201  # signs in while ann's account is under attack
            answers = [a.result() for a in attacks]
        assert answers == [401] * 400  # never a 5xx, never a hint
        assert p.sign_in().status_code == 423
        assert p.sign_in("bob.roe").status_code == 201


def test_a_signed_in_member_changes_the_password(pg: str, tmp_path: Path,
                                                 smtp_server: SmtpServer) -> None:
    with portal(pg, tmp_path, smtp_server) as p:
        this = {"Authorization": f"Bearer {p.sign_in().json()['session']}"}
        other = {"Authorization": f"Bearer {p.sign_in().json()['session']}"}
        change = {"current_password": PASSWORD, "new_password": "Fresh8start"}
        wrong = p.http.put("/portal/password", headers=this, json=change | {"current_password": "Nope1x"})
        assert wrong.status_code == 401
        assert p.http.put("/portal/password", headers=this,
                          json=change | {"new_password": PASSWORD}).status_code == 422  # reused
        done = p.http.put("/portal/password", headers=this, json=change)
        assert done.status_code == 200, done.text
        assert p.http.get("/portal/me", headers=this).status_code == 200
        assert p.http.get("/portal/me", headers=other).status_code == 401  # the others end
        assert p.sign_in(password="Fresh8start").status_code == 201
        assert p.sign_in().status_code == 401
        mail(p.smtp, "password was changed")
