"""Automated enrollment on embedded defaults: an A04 with an e-mail enrolls the patient
through the in-process broker's request queue, and the token arrives in ./mail."""

from __future__ import annotations

import email
import time
from pathlib import Path

from sqlalchemy import select

from engine.store.tables import members, notifications, outbox
from tests.integration.engine_harness import MllpConnection, msa, running_engine
from tests.integration.membership_support import ENROLL_RULES, registration, token_in, wait_for_mail

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
        assert message["Message-ID"].endswith("@portalbridge.invalid>")
        conn.close()
        database = engine.runtime.database
        with database.connect() as c:
            rows = c.execute(select(members)).mappings().all()
            stored = c.execute(select(notifications.c.context)).scalar_one()
            keys = [r[0] for r in c.execute(select(outbox.c.routing_key))]
        [member] = rows
        assert (member["membership_status"], member["enrolled_by"]) == ("pending", "ADT-FEED")
        assert token not in stored and token not in (member["token_sealed"] or "")  # sealed at rest
        assert keys.count("enrollment.request") == 1 and "member.enrolled" in keys
        assert "mpi.changed" not in keys  # only members' changes are published
