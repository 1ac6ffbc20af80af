"""The Workbench's membership routes against the real app and database: point-of-care
enrollment, the Member Account Manager's token and status actions, the audit trail, and
/accounts/status for external systems."""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pypdfium2
import pytest
from pypdf import PdfReader
from sqlalchemy import update

from engine.bootstrap import Runtime, http_app
from engine.cli import main
from engine.staff import Role
from engine.store.tables import notifications
from tests.fakes import TEST_SECRET_KEY
from tests.integration.engine_harness import MllpConnection, msa, running_engine
from tests.integration.membership_support import ENROLL_RULES, registration, token_in, wait_for_mail

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

RULES = ENROLL_RULES.replace("version: 1", "version: 1\nmembership:\n  password: {iterations: 1000}\n"
                             "  point_of_care_email: accept_user_supplied")


@pytest.fixture
def engine_with_patients(database_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, Path]]:
    """The engine (listener, relay, notifier) with patients 7001 (no e-mail) and 7002."""
    rules = tmp_path / "routing.yaml"
    rules.write_text(RULES.replace("enroll: {requires: [email], enrolling_user: ADT-FEED}",
                                   "enroll: {requires: [ssn, mobile]}"), encoding="utf-8")
    mail = tmp_path / "mail"
    with running_engine(database_url, rules, frozenset({"listen", "relay", "notifier"}),
                        mail_url=f"file://{mail}") as engine:
        conn = MllpConnection(engine.mllp_port)
        assert msa(conn.exchange(registration("W1", "7001", email_address="")))[1] == "AA"
        assert msa(conn.exchange(registration("W2", "7002")))[1] == "AA"
        conn.close()
        yield engine.runtime, mail


def _client(runtime: Runtime) -> tuple[TestClient, dict[Role, dict[str, str]]]:
    tokens = {role: runtime.staff.add(f"wb-{role.name.lower()}", frozenset({role}))[1]
              for role in (Role.DIRECT_ENROLLMENT_USER, Role.MEMBER_ACCOUNT_MANAGER,
                           Role.ACCOUNT_STATUS_CLIENT)}
    return TestClient(http_app(runtime)), {r: {"Authorization": f"Bearer {t}"} for r, t in tokens.items()}


def test_point_of_care_enrollment_and_account_management(
        engine_with_patients: tuple[Runtime, Path]) -> None:
    runtime, mail = engine_with_patients
    client, auth = _client(runtime)
    enroller, manager = auth[Role.DIRECT_ENROLLMENT_USER], auth[Role.MEMBER_ACCOUNT_MANAGER]
    with client:
        found = client.get("/workbench/patients", params={"identifier": "GHH|7002"}, headers=enroller)
        assert found.json()["patients"][0]["enrolled"] == "No"
        enrolled = client.post("/workbench/enrollments", headers=enroller, json={
            "identifier": "GHH|7002", "email": "desk@example.org", "passphrase": "river-stone-7",
            "passphrase_repeated": "river-stone-7"})
        assert enrolled.status_code == 200, enrolled.text
        member_id = enrolled.json()["member_id"]
        assert enrolled.json()["membership_status"] == "pending"
        again = client.post("/workbench/enrollments", headers=enroller, json={"identifier": "GHH|7002"})
        assert again.status_code == 409 and "already a pending member" in again.text
        found = client.get("/workbench/patients", params={"identifier": "GHH|7002"}, headers=enroller)
        assert found.json()["patients"][0]["enrolled"] == "Yes"
        first = token_in(wait_for_mail(mail, "activation_token")[0])

        renew = client.post(f"/workbench/members/{member_id}/token/renew", headers=manager,
                            json={"days": 1, "hours": 12, "reason": "asked at the desk"})
        assert renew.status_code == 200, renew.text
        too_long = client.post(f"/workbench/members/{member_id}/token/renew", headers=manager,
                               json={"days": 3, "hours": 1, "reason": "too long"})
        assert too_long.status_code == 422 and "between 1 and 72" in too_long.text
        regen = client.post(f"/workbench/members/{member_id}/token/regenerate", headers=manager,
                            json={"hours": 10, "reason": "lost the e-mail", "notify": True})
        assert regen.status_code == 200
        tokens = {token_in(p) for p in wait_for_mail(mail, "activation_token", count=2)}
        assert len(tokens) == 2 and first in tokens  # a new token, sent (files named per second)
        second = (tokens - {first}).pop()

        body = {"token": second, "fields": {"ssn": "123456789", "mothers_maiden_name": "Smith"},
                "username": "desk.member", "password": "Harbor9lights"}
        wrong = client.post("/portal/activation", json=body | {"passphrase": "wrong-words-1"})
        assert wrong.status_code == 400
        done = client.post("/portal/activation", json=body | {"passphrase": "river-stone-7"})
        assert done.status_code == 200, done.text

        bad = client.post(f"/workbench/members/{member_id}/reactivate", headers=manager,
                          json={"reason": "not inactive"})
        assert bad.status_code == 409
        off = client.post(f"/workbench/members/{member_id}/deactivate", headers=manager,
                          json={"reason": "member asked"})
        assert off.json()["membership_status"] == "inactive"
        status = client.get("/accounts/status", params={"identifier": "GHH|7002"},
                            headers=auth[Role.ACCOUNT_STATUS_CLIENT])
        assert status.json()["membership_status"] == "inactive"
        other = client.get("/accounts/status", params={"identifier": "GHH|7001"},
                           headers=auth[Role.ACCOUNT_STATUS_CLIENT])
        assert other.json() == {"identifier": "GHH|7001", "member_id": None,
                                "enrollment_status": "No", "membership_status": None, "since": None}
        listed = client.get("/workbench/members", params={"status": "inactive"}, headers=manager)
        assert [m["member_id"] for m in listed.json()["members"]] == [member_id]

        audit = client.get("/workbench/audit", params={"member": member_id}, headers=manager).json()
        actions = [(e["action"], e["outcome"]) for e in audit["entries"]][::-1]
        assert actions == [("member.enroll", "success"), ("token.renew", "success"),
                           ("token.renew", "refused"), ("token.regenerate", "success"),
                           ("member.activate", "refused"), ("member.activate", "success"),
                           ("member.reactivate", "refused"), ("member.deactivate", "success")]
        reasons = {e["action"]: e["reason"] for e in audit["entries"] if e["outcome"] == "success"}
        assert reasons["member.deactivate"] == "member asked"
        assert "desk@example.org" not in str(audit)  # no patient data in the audit log


def test_point_of_care_without_any_address_asks_for_printed_activation(
        engine_with_patients: tuple[Runtime, Path]) -> None:
    runtime, _mail = engine_with_patients
    client, auth = _client(runtime)
    with client:
        reply = client.post("/workbench/enrollments", headers=auth[Role.DIRECT_ENROLLMENT_USER],
                            json={"identifier": "GHH|7001"})
        assert reply.status_code == 200 and reply.json()["printed_activation"] is True


def _pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_activation_letters_owed_printed_audited_and_the_token_in_them_activates(
        engine_with_patients: tuple[Runtime, Path], database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    runtime, mail = engine_with_patients
    client, auth = _client(runtime)
    enroller, manager = auth[Role.DIRECT_ENROLLMENT_USER], auth[Role.MEMBER_ACCOUNT_MANAGER]
    monkeypatch.setenv("PORTALBRIDGE_DATABASE_URL", database_url)
    monkeypatch.setenv("PORTALBRIDGE_CONFIG", str(runtime.settings.config_path))
    monkeypatch.setenv("PORTALBRIDGE_SECRET_KEY", TEST_SECRET_KEY)
    with client:
        printed = client.post("/workbench/enrollments", headers=enroller, json={"identifier": "GHH|7001"})
        mailed = client.post("/workbench/enrollments", headers=enroller,
                             json={"identifier": "GHH|7002", "email": "desk@example.org"})
        paper, emailed = printed.json()["member_id"], mailed.json()["member_id"]
        assert printed.json()["printed_activation"] is True
        wait_for_mail(mail, "activation_token")
        details = client.get(f"/workbench/members/{emailed}", headers=manager).json()
        [note] = details["notifications"]
        assert (note["kind"], note["channel"], note["attempts"]) == ("activation_token", "email", 1)
        assert note["delivery"] == "sent" and note["reason"] is None
        assert "token" not in str(details).replace("activation_token", "").replace("token_", "")
        with runtime.database.begin() as conn:  # as if the mail server had refused it for good
            conn.execute(update(notifications).where(notifications.c.member_id == emailed).values(
                status="dead", last_error="recipient refused: 550 5.1.1 <<address>>"))
        [note] = client.get(f"/workbench/members/{emailed}", headers=manager).json()["notifications"]
        assert (note["delivery"], note["reason"]) == ("dead", "recipient refused: 550 5.1.1 <<address>>")

        out = tmp_path / "mail-room.pdf"
        assert main(["letters", "--pending", "-o", str(out), "--reason", "Monday run"]) == 0
        assert "2 activation letter(s) written" in capsys.readouterr().out
        assert out.stat().st_mode & 0o777 == 0o600  # it holds tokens
        pages = [page.extract_text() for page in PdfReader(out).pages]
        assert len(pages) == 2 and all("1 Main St" in p and "Boston, MA 02139" in p for p in pages)
        assert main(["letters", "--pending", "-o", str(out)]) == 0  # printed: owed no more
        assert "no activation letter is owed" in capsys.readouterr().err

        url = f"/workbench/members/{paper}/activation-letter"
        assert client.get(url, headers=enroller).status_code == 422  # a reason is required
        assert client.get(url, params={"reason": "x"},
                          headers=auth[Role.ACCOUNT_STATUS_CLIENT]).status_code == 403
        assert client.get("/workbench/members/nobody/activation-letter", params={"reason": "x"},
                          headers=manager).status_code == 404
        letter = client.get(url, params={"reason": "member at the desk"}, headers=enroller)
        assert letter.status_code == 200 and letter.headers["content-type"] == "application/pdf"
        assert letter.headers["cache-control"] == "no-store"
        text = _pdf_text(letter.content)
        assert "ANN DOE" in text.upper() and "1 Main St" in text and "Boston, MA 02139" in text
        token = re.search(r"\b[A-Z2-7]{26}\b", text)
        assert token, text
        image = pypdfium2.PdfDocument(letter.content)[0].render(scale=1).to_pil()
        image.save(tmp_path / "activation-letter.png")  # page 1, for a person to look at
        assert image.size == (612, 792) and sum(image.convert("L").histogram()[:128]) > 2_000

        done = client.post("/portal/activation", json={
            "token": token.group(0), "fields": {"ssn": "123456789", "mothers_maiden_name": "Smith"},
            "username": "paper.member", "password": "Harbor9lights"})
        assert done.status_code == 200, done.text
        spent = client.get(url, params={"reason": "again"}, headers=manager)
        assert spent.status_code == 409 and "only a pending member" in spent.text

        audit = client.get("/workbench/audit", params={"member": paper}, headers=manager).json()
        prints = [(e["actor"].split(":")[0], e["outcome"], e["reason"]) for e in audit["entries"]
                  if e["action"] == "letter.print"][::-1]
        assert prints == [("cli", "success", "Monday run"), ("staff", "success", "member at the desk"),
                          ("staff", "refused", "again | refused: member " + paper + " is active: "
                           "only a pending member has an activation token to print")]


def test_the_letter_carries_the_passphrase_only_when_the_policy_sends_it_and_one_was_sealed(
        database_url: str, tmp_path: Path) -> None:
    rules = tmp_path / "routing.yaml"
    rules.write_text(RULES.replace("  point_of_care_email: accept_user_supplied",
                                   "  point_of_care_email: accept_user_supplied\n"
                                   "  passphrase: {send_with_token: true}"), encoding="utf-8")
    mail = tmp_path / "mail"
    with running_engine(database_url, rules, frozenset({"listen", "notifier"}),
                        mail_url=f"file://{mail}") as engine:
        conn = MllpConnection(engine.mllp_port)
        assert msa(conn.exchange(registration("P1", "7101", email_address="")))[1] == "AA"
        assert msa(conn.exchange(registration("P2", "7102", email_address="")))[1] == "AA"
        conn.close()
        client, auth = _client(engine.runtime)
        enroller = auth[Role.DIRECT_ENROLLMENT_USER]
        with client:
            ids = [client.post("/workbench/enrollments", headers=enroller, json={
                "identifier": identifier, "passphrase": "river-stone-7",
                "passphrase_repeated": "river-stone-7", **extra}).json()["member_id"]
                for identifier, extra in (("GHH|7101", {"email": "mailed@example.org"}),
                                          ("GHH|7102", {}))]
            wait_for_mail(mail, "activation_token")
            texts = [_pdf_text(client.get(f"/workbench/members/{member}/activation-letter",
                                          params={"reason": "lost"}, headers=enroller).content)
                     for member in ids]
    assert "river-stone-7" in texts[0]  # sealed in the enrollment's notification
    assert "river-stone-7" not in texts[1] and "passphrase" not in texts[1].lower()  # none sent
