"""Portal sessions on SQL: an opaque random token for the member, its SHA-256 in the table.

A session ends when it was not used for the idle lifetime, at its absolute end, at sign-out,
or when the member's password changes. Each use moves ``last_used_at`` in the same statement
that checks both lifetimes, so a session cannot be used past either.

Sessions are written directly (one statement, from the HTTP threads), not through the
group committer: they carry no event, notification or audit row that must commit with them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, insert, or_, update

from engine.store.member_tables import member_sessions
from membership.policies import SessionPolicy
from membership.tokens import RandomSource

__all__ = ["SessionStore", "session_digest"]

SESSION_BYTES = 32  # 256 bits


def session_digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", errors="replace")).hexdigest()


class SessionStore:
    """Start, use, end and purge sessions; every method is one short transaction."""

    def __init__(self, database: Engine, random: RandomSource, policy: SessionPolicy) -> None:
        self._db = database
        self._random = random
        self.policy = policy

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection to hold across a sign-in (its read, then ``start_on``)."""
        with self._db.connect() as conn:
            yield conn

    def start(self, member_id: str, now: datetime) -> str:
        """A new session for ``member_id``; its token (shown once, to the member)."""
        with self._db.connect() as conn:
            return self.start_on(conn, member_id, now)

    def start_on(self, conn: Connection, member_id: str, now: datetime) -> str:
        """``start`` on a held connection (whose open transaction, if any, is committed)."""
        token = base64.urlsafe_b64encode(self._random.bytes(SESSION_BYTES)).decode("ascii").rstrip("=")
        conn.execute(insert(member_sessions).values(
            digest=session_digest(token), member_id=member_id, created_at=now, last_used_at=now,
            expires_at=now + self.policy.absolute))
        conn.commit()
        return token

    def use(self, token: str, now: datetime) -> str | None:
        """The member of a live session (which counts as used now), or None."""
        table = member_sessions
        with self._db.begin() as conn:
            row = conn.execute(
                update(table).where(table.c.digest == session_digest(token),
                                    table.c.expires_at > now,
                                    table.c.last_used_at > now - self.policy.idle)
                .values(last_used_at=now).returning(table.c.member_id)).first()
        return None if row is None else str(row[0])

    def end(self, token: str) -> bool:
        """Sign out: True when the session existed."""
        with self._db.begin() as conn:
            done = conn.execute(delete(member_sessions).where(
                member_sessions.c.digest == session_digest(token)))
        return bool(done.rowcount)

    def end_all(self, member_id: str) -> int:
        """Every session of a member (the password changed)."""
        with self._db.begin() as conn:
            done = conn.execute(delete(member_sessions).where(member_sessions.c.member_id == member_id))
        return int(done.rowcount)

    def end_others(self, member_id: str, token: str) -> int:
        """Every session of a member but this one (the member changed the password)."""
        table = member_sessions
        with self._db.begin() as conn:
            done = conn.execute(delete(table).where(table.c.member_id == member_id,
                                                    table.c.digest != session_digest(token)))
        return int(done.rowcount)

    def purge(self, now: datetime) -> int:
        """Delete sessions past either lifetime (the scheduler's housekeeping)."""
        table = member_sessions
        with self._db.begin() as conn:
            done = conn.execute(delete(table).where(or_(
                table.c.expires_at <= now, table.c.last_used_at <= now - self.policy.idle)))
        return int(done.rowcount)
