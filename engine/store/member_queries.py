"""Read side of membership: members by token, username, status or identifier, for the HTTP
routes (outside the writer thread; every change still goes through the committer)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from engine.store.member_tables import members
from engine.store.members_sql import member_from_row
from membership.model import Member
from mpi.tables import identifiers, patients

__all__ = ["MemberPage", "MemberQueries"]

_MAX_HOPS = 32


@dataclass(frozen=True, slots=True)
class MemberPage:
    total: int
    members: list[Member]


class MemberQueries:
    """Queries over ``members``; ``connect`` yields a connection for one query."""

    def __init__(self, connect: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._connect = connect

    def _one(self, where: Any) -> Member | None:
        with self._connect() as conn:
            row = conn.execute(select(members).where(where)).mappings().first()
        return member_from_row(row) if row is not None else None

    def get(self, member_id: str) -> Member | None:
        return self._one(members.c.id == member_id)

    def by_token(self, digest: str) -> Member | None:
        return self._one(members.c.token_digest == digest)

    def by_reset_token(self, digest: str) -> Member | None:
        return self._one(members.c.reset_digest == digest)

    def by_username(self, username: str) -> Member | None:
        return self._one(members.c.username_key == username.casefold())

    @staticmethod
    def by_username_on(conn: Connection, username: str) -> Member | None:
        """``by_username`` on a connection the caller holds (a sign-in reads, then writes its
        session, on one connection)."""
        row = conn.execute(select(members).where(
            members.c.username_key == username.casefold())).mappings().first()
        return member_from_row(row) if row is not None else None

    def by_email(self, email: str, limit: int = 20) -> list[Member]:
        """Members whose preferences have this e-mail address (exact, as stored)."""
        with self._connect() as conn:
            rows = conn.execute(select(members).where(members.c.email == email).limit(limit)).mappings()
            return [member_from_row(r) for r in rows]

    def expired_passwords(self, changed_before: datetime, limit: int) -> list[str]:
        """Active members whose password changed before ``changed_before`` and is not marked."""
        with self._connect() as conn:
            return list(conn.execute(select(members.c.id).where(
                members.c.membership_status == "active", members.c.password_expired_at.is_(None),
                members.c.password_changed_at < changed_before).limit(limit)).scalars())

    def ended_locks(self, now: datetime, limit: int) -> list[str]:
        """Members whose timed lock is over (still recorded as locked)."""
        with self._connect() as conn:
            return list(conn.execute(select(members.c.id).where(
                members.c.locked_until <= now).limit(limit)).scalars())

    def by_patients(self, patient_ids: list[str]) -> dict[str, Member]:
        if not patient_ids:
            return {}
        with self._connect() as conn:
            rows = conn.execute(select(members).where(members.c.patient_id.in_(patient_ids))).mappings()
            return {row["patient_id"]: member_from_row(row) for row in rows}

    def by_identifier(self, authority: str, value: str) -> Member | None:
        """The member of the (surviving) patient holding ``authority|value``."""
        with self._connect() as conn:
            found = conn.execute(select(identifiers.c.patient_id).where(
                identifiers.c.authority == authority, identifiers.c.value == value)).scalars().all()
            for patient_id in found:
                survivor = _survivor(conn, patient_id)
                row = conn.execute(select(members).where(members.c.patient_id == survivor)).mappings().first()
                if row is not None:
                    return member_from_row(row)
        return None

    def page(self, status: str | None, patient_ids: list[str] | None, limit: int,
             offset: int) -> MemberPage:
        """Members by status (and among ``patient_ids`` when a search gave some), newest first."""
        query = select(members)
        if status:
            query = query.where(members.c.membership_status == status)
        if patient_ids is not None:
            query = query.where(members.c.patient_id.in_(patient_ids))
        with self._connect() as conn:
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            rows = conn.execute(query.order_by(members.c.status_since.desc(), members.c.id)
                                .limit(limit).offset(offset)).mappings()
            return MemberPage(total, [member_from_row(r) for r in rows])


def _survivor(conn: Connection, patient_id: str) -> str:
    current = patient_id
    for _ in range(_MAX_HOPS):
        merged = conn.execute(select(patients.c.merged_into).where(patients.c.id == current)).scalar()
        if not merged:
            break
        current = merged
    return current
