"""The notifier: claims pending notification rows, opens their sealed secrets, delivers them
through a ``NotificationSender`` and records the result.

A failed delivery is retried after a capped exponential delay; a permanent failure, or
``max_attempts`` temporary ones, makes the row ``dead`` (kept, with its last error). On
PostgreSQL rows are claimed ``FOR UPDATE SKIP LOCKED`` and stay locked until their results
are committed, so several notifiers share the work and never send a row twice while they
run; a batch's results are committed on a second thread while the next batch is sent. On
SQLite one notifier runs (``serve`` starts it) and commits each batch before the next.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, RootTransaction, bindparam, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from engine.domain.clock import Clock
from engine.notifications import Notification, NotificationSender
from engine.store.database import is_sqlite
from engine.store.errors import classify_store_error
from engine.store.tables import notifications
from membership.tokens import SecretBox

__all__ = ["Notifier", "NotifierPolicy"]

log = logging.getLogger(__name__)

#: The failures of a batch, in one executemany (sent rows take one UPDATE ... WHERE id IN).
_FAILURE = update(notifications).where(notifications.c.id == bindparam("row_id")).values(
    status=bindparam("status"), attempts=bindparam("attempts"),
    last_error=bindparam("last_error"), next_attempt_at=bindparam("next_attempt_at"))


def _doubling(attempts: int) -> timedelta:
    return min(timedelta(seconds=30) * (1 << max(attempts - 1, 0)), timedelta(hours=1))


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifierPolicy:
    """routing.yaml's ``notifications.max_attempts`` and ``notifications.retry``."""

    batch_size: int = 100
    max_attempts: int = 8
    poll_interval: float = 0.5
    retry_delay: Callable[[int], timedelta] = _doubling  # the wait after the n-th failure


class Notifier:
    """Delivers notification rows; one instance per notifier thread."""

    def __init__(self, database: Engine, sender: NotificationSender, box: SecretBox, clock: Clock,
                 policy: NotifierPolicy | None = None) -> None:
        self._db = database
        self._sender = sender
        self._box = box
        self._clock = clock
        self.policy = policy or NotifierPolicy()
        self.sent = 0  # delivered
        self.failed = 0  # failed attempts, retried or not
        self.dead = 0  # of which no more attempts will be made
        self._recorder = None if is_sqlite(database) else \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="notifier-record")
        self._recording: Future[None] | None = None

    def pump(self) -> int:
        """Deliver one batch of due rows, its results committed; the number of rows claimed.

        The claimed rows stay locked (``FOR UPDATE SKIP LOCKED``) until their results are
        committed, so another notifier never takes them in the meantime; a crash before that
        commit leaves them pending, to be sent once more with the same Message-ID.
        """
        claimed = self.start_batch()
        self.finish()
        return claimed

    def start_batch(self) -> int:
        """Claim and deliver one batch; the number of rows claimed.

        On PostgreSQL its results are written and committed on the notifier's second thread
        while the caller claims and sends the next batch (whose claim skips these rows: they
        stay locked until that commit), so the database's work overlaps the mail server's.
        Before a batch's results are queued, the previous batch's are committed (``finish``).
        On SQLite, which has no SKIP LOCKED, they are committed before this returns.
        """
        now = self._clock.now()
        conn = self._db.connect()
        try:
            transaction = conn.begin()
            rows = list(conn.execute(self._claim(now)).mappings())
            sent, failures = self._deliver(rows, now)
        except BaseException as exc:
            conn.close()  # rolls back: the rows are pending again, unlocked
            if isinstance(exc, SQLAlchemyError):
                raise classify_store_error(exc) from exc
            raise
        self.finish()
        if self._recorder is None:
            self._record(conn, transaction, sent, failures, now)
        else:
            self._recording = self._recorder.submit(self._record, conn, transaction, sent,
                                                    failures, now)
        return len(rows)

    def finish(self) -> None:
        """Wait until the results of the last batch are committed (raising why they were not)."""
        recording, self._recording = self._recording, None
        if recording is not None:
            recording.result()

    def close(self) -> None:
        """Commit what is being recorded and stop the second thread."""
        try:
            self.finish()
        finally:
            if self._recorder is not None:
                self._recorder.shutdown()

    @staticmethod
    def _record(conn: Connection, transaction: RootTransaction, sent: list[str],
                failures: list[dict[str, Any]], now: datetime) -> None:
        """Write a batch's results and commit, releasing its rows."""
        try:
            if sent:  # the usual outcome: one statement for the batch
                conn.execute(update(notifications).where(notifications.c.id.in_(sent)).values(
                    status="sent", attempts=notifications.c.attempts + 1, sent_at=now,
                    last_error=None, next_attempt_at=None))
            if failures:
                conn.execute(_FAILURE, failures)
            transaction.commit()
        except SQLAlchemyError as exc:
            raise classify_store_error(exc) from exc
        finally:
            conn.close()

    def _claim(self, now: datetime) -> Any:
        query = (select(notifications).where(
            notifications.c.status == "pending",
            or_(notifications.c.next_attempt_at.is_(None), notifications.c.next_attempt_at <= now))
            .order_by(notifications.c.created_at).limit(self.policy.batch_size))
        return query if is_sqlite(self._db) else query.with_for_update(skip_locked=True)

    def _deliver(self, rows: list[Any], now: datetime) -> tuple[list[str], list[dict[str, Any]]]:
        """Send the rows that open: the ids sent, and the failures' new values."""
        sent: list[str] = []
        failures: list[dict[str, Any]] = []
        opened: list[tuple[Any, Notification]] = []
        for row in rows:
            try:
                opened.append((row, self._notification(row)))
            except ValueError as exc:  # a sealed value that cannot be opened: no retry helps
                failures.append(self._failure(row, str(exc), True, now))
        outcomes = self._sender.send_batch([notification for _row, notification in opened])
        for (row, _notification), outcome in zip(opened, outcomes, strict=True):
            if outcome is None:
                sent.append(row["id"])
            else:
                failures.append(self._failure(row, outcome.reason, outcome.permanent, now))
        self.sent += len(sent)
        return sent, failures

    def _failure(self, row: Any, reason: str, permanent: bool, now: datetime) -> dict[str, Any]:
        self.failed += 1
        attempts = row["attempts"] + 1
        dead = permanent or attempts >= self.policy.max_attempts
        self.dead += dead
        log.warning("notifier: %s %s for member %s failed (attempt %d%s): %s", row["kind"],
                    row["id"], row["member_id"], attempts, ", now dead" if dead else "", reason)
        return {"row_id": row["id"], "status": "dead" if dead else "pending", "attempts": attempts,
                "last_error": reason[:2000],
                "next_attempt_at": None if dead else now + self.policy.retry_delay(attempts)}

    def _notification(self, row: Any) -> Notification:
        context = orjson.loads(row["context"])
        secrets = set()
        for name, value in list(context.items()):
            if isinstance(value, dict) and "$sealed" in value:
                context[name] = self._box.open(value["$sealed"])  # opened only here, at delivery
                secrets.add(name)
        return Notification(id=row["id"], kind=row["kind"], channel=row["channel"],
                            recipient=row["recipient"], carrier=row["carrier"], locale=row["locale"],
                            member_id=row["member_id"], context=context,
                            created_at=row["created_at"], secrets=frozenset(secrets))

    def run(self, stop: threading.Event, on_cycle: Callable[[], None] | None = None) -> None:
        """Deliver until ``stop`` is set; a database outage is waited out."""
        try:
            while not stop.is_set():
                if on_cycle is not None:
                    on_cycle()
                try:
                    claimed = self.start_batch()
                    if claimed < self.policy.batch_size:
                        self.finish()  # caught up: commit before waiting for more
                except Exception as exc:  # noqa: BLE001 - a database outage: wait and try again
                    log.warning("notifier: %s; retrying", getattr(exc, "reason", exc))
                    claimed = 0
                    stop.wait(5.0)
                if claimed < self.policy.batch_size:
                    stop.wait(self.policy.poll_interval)
        finally:
            self.close()
