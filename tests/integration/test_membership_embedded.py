"""Automated enrollment on embedded defaults: an A04 with an e-mail enrolls the patient
through the in-process broker's request queue, and the token arrives in ./mail."""

from __future__ import annotations

import email
import re
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from engine.store.tables import members, notifications, outbox
from tests.integration.engine_harness import MllpConnection, msa, running_engine
from tests.integration.membership_support import ENROLL_RULES, registration, token_in, wait_for_mail
from tests.smtp_server import Received, SmtpServer

COMPONENTS = frozenset({"listen", "relay", "enrollment", "notifier"})


def _wait(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_a04_with_an_email_enrolls_through_the_queue(database_url: str, tmp_path: Path) -> None:
    rules = tmp_path / "routing.yaml"
    rules.write_text(ENROLL_RULES, encoding="utf-8")
    mail = tmp_path / "mail"
    with running_engine(database_url, rules, COMPONENTS, mail_url=f"file://{mail}") as engine:
        conn = MllpConnection(engine.mllp_port)
        assert msa(conn.exchange(registration("E1", "5001")))[1] == "AA"
        assert msa(conn.exchange(registration("E2", "5002", email_address="")))[1] == "AA"
        [path] = wait_for_mail(mail, "activation_token")
        token = token_in(path)
        message = email.message_from_bytes(path.read_bytes())
        assert message["To"] == "ann@example.org"
        conn.close()
        database = engine.runtime.database
        with database.connect() as c:
            rows = c.execute(select(members)).mappings().all()
            note_id, stored = c.execute(select(notifications.c.id, notifications.c.context)).one()
            keys = [r[0] for r in c.execute(select(outbox.c.routing_key))]
        [member] = rows
        assert (member["membership_status"], member["enrolled_by"]) == ("pending", "ADT-FEED")
        assert token not in stored and token not in (member["token_sealed"] or "")  # sealed at rest
        assert message["Message-ID"] == f"<{note_id}@portal.example.org>"  # stable across retries
        assert keys.count("enrollment.request") == 1 and "member.enrolled" in keys
        assert "mpi.changed" not in keys  # only members' changes are published


def test_the_mailed_token_activates_the_account_over_http(database_url: str, tmp_path: Path) -> None:
    import httpx

    rules = tmp_path / "routing.yaml"
    rules.write_text(ENROLL_RULES.replace("version: 1", "version: 1\nmembership:\n"
                                          "  password: {iterations: 1000}"), encoding="utf-8")
    mail = tmp_path / "mail"
    with running_engine(database_url, rules, COMPONENTS | {"api"}, mail_url=f"file://{mail}") as engine:
        conn = MllpConnection(engine.mllp_port)
        assert msa(conn.exchange(registration("E1", "5001")))[1] == "AA"
        conn.close()
        token = token_in(wait_for_mail(mail, "activation_token")[0])
        body = {"token": token, "fields": {"ssn": "123-45-6789", "mothers_maiden_name": "smith"},
                "username": "ann.doe", "password": "Sunny7days"}
        with httpx.Client(base_url=engine.http, timeout=15) as http:
            weak = http.post("/portal/activation", json=body | {"password": "password"})
            assert weak.status_code == 422 and "upper-case" in weak.text
            wrong = http.post("/portal/activation", json=body | {"fields": {
                "ssn": "999-45-6789", "mothers_maiden_name": "smith"}})
            assert wrong.status_code == 400 and "ssn" not in wrong.text  # generic answer
            done = http.post("/portal/activation", json=body)
            assert done.status_code == 200, done.text
            assert done.json()["membership_status"] == "active"
            again = http.post("/portal/activation", json=body)
            assert again.status_code == 400  # the token is spent
            signed = http.post("/portal/sessions", json={"username": "ANN.DOE", "password": "Sunny7days"})
            assert signed.status_code == 201 and signed.json()["session"]
            me = http.get("/portal/me", headers={"Authorization": f"Bearer {signed.json()['session']}"})
            assert me.status_code == 200 and me.json()["membership_status"] == "active"
            assert http.post("/portal/sessions", json={"username": "ann.doe", "password": "nope"}
                             ).status_code == 401
        wait_for_mail(mail, "registration_complete")


def test_sign_in_upgrades_the_hash_when_the_policy_changed(database_url: str, tmp_path: Path) -> None:
    import httpx

    rules = tmp_path / "routing.yaml"
    mail = tmp_path / "mail"

    def policy(text: str) -> None:
        rules.write_text(ENROLL_RULES.replace("version: 1", "version: 1\nmembership:\n" + text),
                         encoding="utf-8")

    policy("  password: {iterations: 1000}")
    body = {"fields": {"ssn": "123-45-6789", "mothers_maiden_name": "smith"},
            "username": "rehash.me", "password": "Sunny7days"}
    with running_engine(database_url, rules, COMPONENTS | {"api"}, mail_url=f"file://{mail}") as engine:
        conn = MllpConnection(engine.mllp_port)
        assert msa(conn.exchange(registration("H1", "6001")))[1] == "AA"
        conn.close()
        token = token_in(wait_for_mail(mail, "activation_token")[0])
        with httpx.Client(base_url=engine.http, timeout=15) as http:
            assert http.post("/portal/activation", json=body | {"token": token}).status_code == 200
    policy("  password: {hasher: argon2id, argon2_memory_kib: 8192, argon2_time_cost: 1}")
    with running_engine(database_url, rules, frozenset({"api"})) as engine:
        stored = engine.runtime.members.by_username("rehash.me")
        assert stored is not None and stored.password_hash.startswith("pbkdf2_sha256$1000$")
        with httpx.Client(base_url=engine.http, timeout=15) as http:
            signed = http.post("/portal/sessions", json={"username": "rehash.me", "password": "Sunny7days"})
            assert signed.status_code == 201
        upgraded = engine.runtime.members.by_username("rehash.me")
        assert upgraded is not None and upgraded.password_hash.startswith("argon2$$argon2id$")
        with httpx.Client(base_url=engine.http, timeout=15) as http:  # the new hash verifies
            assert http.post("/portal/sessions", json={"username": "rehash.me",
                                                       "password": "Sunny7days"}).status_code == 201


def test_the_token_received_by_the_smtp_server_activates_the_account_over_http(
        database_url: str, tmp_path: Path, smtp_server: SmtpServer) -> None:
    import httpx

    rules = tmp_path / "routing.yaml"
    rules.write_text(ENROLL_RULES.replace("version: 1", "version: 1\nmembership:\n"
                                          "  password: {iterations: 1000}"), encoding="utf-8")

    def received(kind: str) -> Received:
        _wait(lambda: any(r.message["X-Portalbridge-Kind"] == kind for r in smtp_server.received))
        return next(r for r in smtp_server.received if r.message["X-Portalbridge-Kind"] == kind)

    with running_engine(database_url, rules, COMPONENTS | {"api"}, mail_url=smtp_server.url) as engine:
        conn = MllpConnection(engine.mllp_port)
        assert msa(conn.exchange(registration("S1", "5101")))[1] == "AA"
        conn.close()
        mail = received("activation_token")
        assert mail.recipients == ("ann@example.org",)
        assert mail.message["Subject"] and mail.message["Content-Language"] == "en-US"
        text, html = mail.body("plain"), mail.body("html")
        match = re.search(r"^\s+([A-Z2-7]{26})\s*$", text, re.M)
        assert match and match.group(1) in html  # the same token in both parts
        body = {"token": match.group(1), "fields": {"ssn": "123-45-6789", "mothers_maiden_name": "smith"},
                "username": "ann.smtp", "password": "Sunny7days"}
        with httpx.Client(base_url=engine.http, timeout=15) as http:
            done = http.post("/portal/activation", json=body)
        assert done.status_code == 200, done.text
        assert done.json()["membership_status"] == "active"
        assert "ann.smtp" in received("registration_complete").body("plain")

        def sample(name: str, **labels: str) -> float | None:
            text = httpx.get(f"{engine.http}/metrics").text
            return next((s.value for f in text_string_to_metric_families(text) for s in f.samples
                         if s.name == name and s.labels == labels), None)

        _wait(lambda: sample("portalbridge_notifications", delivery="sent") == 2)
        assert sample("portalbridge_notifications", delivery="dead") == 0
        assert sample("portalbridge_notifier_attempts_total", result="sent") == 2
    assert len(smtp_server.received) == 2  # each notification once
