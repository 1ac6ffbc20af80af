"""The notifier against a real database and the test SMTP server: exactly once with two
notifiers on PostgreSQL, one duplicate at most after a crash (same Message-ID), retries of a
server that refuses then accepts, dead notifications replayed."""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, update

from engine.notifications import Notification, NotificationSender
from engine.secretbox import AesGcmBox
from engine.store.database import open_database
from engine.store.members_sql import notification_row
from engine.store.notification_rows import NotificationRows
from engine.store.tables import notifications
from outbound.notify import build_sender
from outbound.notify.notifier import Notifier, NotifierPolicy
from tests.fakes import TEST_SECRET_KEY, FixedClock
from tests.smtp_server import SmtpServer
from tests.unit.notify.notify_support import fixed_now, site_rules

BOX = AesGcmBox(base64.b64decode(TEST_SECRET_KEY))
RULES = site_rules()
START = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


def token_notification(number: int) -> Notification:
    return Notification(id=f"ntf-{number:05d}", kind="activation_token", channel="email",
                        recipient=f"member{number}@example.org", carrier=None, locale="en-US",
                        member_id=f"mem-{number}", created_at=START + timedelta(milliseconds=number),
                        context={"token": f"TOKEN{number:021d}", "expires_at": "2026-03-07T20:30:00+00:00"},
                        secrets=frozenset({"token"}))


def store(database: Engine, count: int) -> list[str]:
    """``count`` activation-token notifications, their tokens sealed, as the membership writes them."""
    rows = [notification_row(token_notification(n), BOX) for n in range(count)]
    with database.begin() as conn:
        conn.execute(insert(notifications), rows)
    return [row["id"] for row in rows]


def received_ids(server: SmtpServer) -> Counter[str]:
    return Counter(str(r.message["Message-ID"]) for r in server.received)


def message_id(notification_id: str) -> str:
    return f"<{notification_id}@portal.example.org>"


@pytest.fixture
def senders(smtp_server: SmtpServer) -> Iterator[Callable[[], NotificationSender]]:
    """Makes senders to the test server; closes them all at the end."""
    made: list[NotificationSender] = []

    def make() -> NotificationSender:
        made.append(build_sender(smtp_server.url, RULES, now=fixed_now))
        return made[-1]

    yield make
    for sender in made:
        sender.close()


def test_two_notifiers_on_postgresql_send_every_notification_exactly_once(
        postgres_url: str, smtp_server: SmtpServer, senders: Callable[[], NotificationSender]) -> None:
    database = open_database(postgres_url)
    with database.begin() as conn:
        conn.execute(notifications.delete())
    ids = store(database, 400)
    policy = NotifierPolicy(batch_size=10, poll_interval=0.01)
    engines = [open_database(postgres_url) for _ in range(2)]  # two processes, two pools
    workers = [Notifier(engine, senders(), BOX, FixedClock(START), policy) for engine in engines]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in workers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(smtp_server.received) < len(ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a second copy, if any were sent, would have arrived by now
    stop.set()
    for thread in threads:
        thread.join(10)
    counts = received_ids(smtp_server)
    assert counts == Counter({message_id(i): 1 for i in ids})
    assert all(w.sent > 0 for w in workers), [w.sent for w in workers]  # both took a share
    assert sum(w.sent for w in workers) == len(ids)
    assert NotificationRows(database).counts()["sent"] == len(ids)
    for engine in (*engines, database):
        engine.dispose()


class _Crash(BaseException):
    """The process dies (not an error the notifier could catch and record)."""


class CrashAfterHandOff(NotificationSender):
    """Hands each message to the real sender, and dies right after the ``crash_at``-th."""

    def __init__(self, inner: NotificationSender, crash_at: int) -> None:
        self.inner = inner
        self.crash_at = crash_at
        self.handed = 0

    def send(self, notification: Notification) -> None:
        self.inner.send(notification)
        self.handed += 1
        if self.handed == self.crash_at:
            raise _Crash


def test_a_crash_between_hand_off_and_mark_sent_duplicates_at_most_once_with_the_same_message_id(
        database: Engine, smtp_server: SmtpServer, senders: Callable[[], NotificationSender]) -> None:
    ids = store(database, 12)
    policy = NotifierPolicy(batch_size=5)
    crashing = Notifier(database, CrashAfterHandOff(senders(), crash_at=3), BOX, FixedClock(START), policy)
    with pytest.raises(_Crash):
        crashing.pump()
    assert len(smtp_server.received) == 3  # handed to the server, never marked sent
    restarted = Notifier(database, senders(), BOX, FixedClock(START), policy)
    while restarted.pump():
        pass
    counts = received_ids(smtp_server)
    assert set(counts) == {message_id(i) for i in ids}  # nothing lost
    assert {i for i, n in counts.items() if n == 2} == {message_id(i) for i in ids[:3]}
    assert max(counts.values()) == 2  # each duplicate carries its notification's Message-ID
    assert NotificationRows(database).counts()["sent"] == 12


def test_a_server_that_refuses_then_accepts_gets_every_notification_once(
        database: Engine, smtp_server: SmtpServer, senders: Callable[[], NotificationSender]) -> None:
    ids = store(database, 6)
    clock = FixedClock(START)
    notifier = Notifier(database, senders(), BOX, clock,
                        NotifierPolicy(retry_delay=lambda attempts: timedelta(seconds=30 * attempts)))
    rows = NotificationRows(database)
    smtp_server.refuse("RCPT", "451 4.7.1 <member0@example.org> greylisted, try again later", times=4)
    assert notifier.pump() == 6
    assert len(smtp_server.received) == 2
    failed = rows.find(state="failed")
    assert {r.id for r in failed} == set(ids[:4])
    assert {r.reason for r in failed} == {"recipient refused: 451 4.7.1 <<address>> greylisted, "
                                          "try again later"}  # the server's reason, address masked
    assert {r.next_attempt_at for r in failed} == {START + timedelta(seconds=30)}
    assert notifier.pump() == 0  # not due yet
    clock.advance(seconds=30)
    assert notifier.pump() == 4
    assert received_ids(smtp_server) == Counter({message_id(i): 1 for i in ids})
    assert [(r.state, r.attempts) for r in rows.find(member_id="mem-0")] == [("sent", 2)]
    assert rows.counts() == {"queued": 0, "failed": 0, "sent": 6, "dead": 0, "bounced": 0}


def test_dead_after_max_attempts_or_a_5xx_then_replayed_and_sent(
        database: Engine, smtp_server: SmtpServer, senders: Callable[[], NotificationSender]) -> None:
    [refused, tired] = store(database, 2)
    clock = FixedClock(START)
    notifier = Notifier(database, senders(), BOX, clock, NotifierPolicy(
        max_attempts=2, retry_delay=lambda attempts: timedelta(seconds=1)))
    smtp_server.refuse("DATA", "452 4.3.1 mailbox full", times=2)
    notifier.pump()  # both refused once (DATA 4xx: try again)
    clock.advance(seconds=1)
    smtp_server.refuse("RCPT", "550 5.1.1 no such user", times=1)
    smtp_server.refuse("DATA", "452 4.3.1 mailbox full", times=1)
    notifier.pump()  # the first refused for good, the second a second time: both dead
    rows = NotificationRows(database)
    assert [(r.id, r.attempts, r.reason) for r in rows.find(state="dead")] == [
        (tired, 2, "message refused: 452 4.3.1 mailbox full"),
        (refused, 2, "recipient refused: 550 5.1.1 no such user")]
    assert notifier.dead == 2 and smtp_server.received == []
    clock.advance(hours=1)
    assert notifier.pump() == 0  # dead stays dead
    replayed = rows.replay([message_id(refused)])  # a Message-ID names its notification
    assert [r.id for r in replayed] == [refused]
    assert rows.replay([refused]) == []  # pending again: nothing more to replay
    assert [(r.state, r.attempts) for r in rows.find(member_id="mem-0")] == [("queued", 0)]
    assert notifier.pump() == 1
    assert received_ids(smtp_server) == Counter({message_id(refused): 1})
    assert [r.id for r in rows.replay(all_dead=True)] == [tired]
    bounced = rows.bounced(refused, "550 5.1.1 mailbox unavailable (from the bounce)")
    assert (bounced.state, bounced.reason) == ("bounced", "550 5.1.1 mailbox unavailable (from the bounce)")


def test_notifications_list_and_replay_on_the_command_line(
        database_url: str, database: Engine, rules_file: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    monkeypatch.setenv("PORTALBRIDGE_CONFIG", str(rules_file))
    monkeypatch.setenv("PORTALBRIDGE_DATABASE_URL", database_url)
    ids = store(database, 3)
    with database.begin() as conn:
        conn.execute(update(notifications).where(notifications.c.id == ids[0]).values(
            status="dead", attempts=8, last_error="recipient refused: 550 5.1.1 <<address>>"))
        conn.execute(update(notifications).where(notifications.c.id == ids[1]).values(
            attempts=1, last_error="cannot reach the SMTP server: Connection refused",
            next_attempt_at=START + timedelta(seconds=30)))

    def run(*args: str) -> tuple[int, list[str], str]:
        code = main(["notifications", *args])
        out, err = capsys.readouterr()
        return code, out.splitlines(), err

    code, out, _ = run("list", "--dead")
    assert code == 0 and out[0] == "notifications: 1 queued, 1 failed, 0 sent, 1 dead, 0 bounced"
    assert out[2].split("\t") == [ids[0], "mem-0", "activation_token", "email", "dead", "8",
                                  "2026-03-04T15:00:00+00:00", "-",
                                  "recipient refused: 550 5.1.1 <<address>>"]
    printed = "\n".join(out)
    assert "@example.org" not in printed and "TOKEN" not in printed  # no address, no token
    code, out, _ = run("list", "--state", "failed")
    assert [line.split("\t")[4] for line in out[2:]] == ["failed"]
    assert main(["notifications", "replay", "--reason", "no ids"]) == 2  # names nothing
    capsys.readouterr()
    code, out, err = run("replay", ids[0], ids[2], "--reason", "the mailbox is fixed")
    assert code == 1 and out == ["1 notification(s) pending again; the notifier sends them with "
                                 "their Message-IDs unchanged"]
    assert ids[2] in err and "not replayed" in err  # queued: nothing to replay
    code, out, _ = run("list")
    assert out == ["notifications: 2 queued, 1 failed, 0 sent, 0 dead, 0 bounced"]
    code, out, err = run("bounce", message_id(ids[0]), "--reason", "550 mailbox unavailable")
    assert code == 2 and "not sent" in err
    assert main(["audit", "--member", "mem-0"]) == 0
    entries = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(e[3], e[4], e[7]) for e in entries] == [
        ("notification.bounce", "refused", "550 mailbox unavailable (refused: notification "
         f"{ids[0]} is queued, not sent: only a sent notification can bounce)"),
        ("notification.replay", "success", "the mailbox is fixed")]
