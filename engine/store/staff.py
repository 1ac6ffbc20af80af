"""The staff directory on SQL: table ``staff_users``, one short transaction per call."""

from __future__ import annotations

import builtins
from typing import Any

import orjson
from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from engine.domain.clock import Clock, IdSource
from engine.errors import Conflict
from engine.staff import Role, StaffDirectory, StaffEntry
from engine.store.errors import store_errors
from engine.store.tables import staff_users

__all__ = ["SqlStaffDirectory"]

_ENTRY_COLUMNS = (staff_users.c.id, staff_users.c.name, staff_users.c.roles,
                  staff_users.c.created_at, staff_users.c.revoked_at)


class SqlStaffDirectory(StaffDirectory):
    """Staff members in ``staff_users``. Every call reads the table, so a revocation made by
    another process (``portalbridge staff revoke``) takes effect on the very next request."""

    def __init__(self, database: Engine, clock: Clock, ids: IdSource) -> None:
        super().__init__(clock, ids)
        self._db = database

    def list(self) -> builtins.list[StaffEntry]:
        query = select(*_ENTRY_COLUMNS).order_by(staff_users.c.created_at, staff_users.c.id)
        with store_errors(), self._db.connect() as conn:
            return [_entry(row._mapping) for row in conn.execute(query)]

    def _find(self, name_or_id: str) -> StaffEntry | None:
        query = select(*_ENTRY_COLUMNS).where(
            or_(staff_users.c.id == name_or_id, staff_users.c.name == name_or_id))
        with store_errors(), self._db.connect() as conn:
            rows = [_entry(row._mapping) for row in conn.execute(query)]
        # An id wins over a name, should a name ever spell another member's id.
        rows.sort(key=lambda entry: entry.id != name_or_id)
        return rows[0] if rows else None

    def _find_by_digest(self, digest: str) -> tuple[StaffEntry, str] | None:
        query = select(*_ENTRY_COLUMNS, staff_users.c.token_sha256).where(
            staff_users.c.token_sha256 == digest)
        with store_errors(), self._db.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else (_entry(row._mapping), row.token_sha256)

    def _insert(self, entry: StaffEntry, digest: str) -> None:
        row = {"id": entry.id, "name": entry.name, "roles": _roles_json(entry.roles),
               "token_sha256": digest, "created_at": entry.created_at, "revoked_at": None}
        with store_errors():
            try:
                with self._db.begin() as conn:
                    conn.execute(insert(staff_users), row)
            except IntegrityError:
                # Only the name can collide in practice: two ``staff add`` of one name at once.
                raise Conflict(f"a staff member named {entry.name!r} exists already") from None

    def _set_revoked(self, entry: StaffEntry) -> None:
        with store_errors(), self._db.begin() as conn:
            conn.execute(update(staff_users).where(staff_users.c.id == entry.id)
                         .where(staff_users.c.revoked_at.is_(None))
                         .values(revoked_at=entry.revoked_at))


def _roles_json(roles: frozenset[Role]) -> str:
    return orjson.dumps(sorted(role.value for role in roles)).decode()


def _entry(row: Any) -> StaffEntry:
    return StaffEntry(id=row["id"], name=row["name"],
                      roles=frozenset(Role(value) for value in orjson.loads(row["roles"])),
                      created_at=row["created_at"], revoked_at=row["revoked_at"])
