"""Staff directory and audit log on the real databases (SQLite, then PostgreSQL)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.exc import DBAPIError

from engine.audit import AuditEntry
from engine.errors import Conflict, NotFound
from engine.staff import Role, new_staff_token
from engine.store.audit import SqlAuditLog
from engine.store.sql_uow import SqlUnitOfWork
from engine.store.staff import SqlStaffDirectory
from engine.store.tables import audit_log, staff_users
from tests.fakes import FixedClock, SequentialIds

MANAGER = frozenset({Role.MEMBER_ACCOUNT_MANAGER})


def directory(database: Engine, clock: FixedClock | None = None) -> SqlStaffDirectory:
    return SqlStaffDirectory(database, clock or FixedClock(), SequentialIds())


def test_add_authenticate_list_and_revoke(database: Engine) -> None:
    clock = FixedClock()
    staff = directory(database, clock)
    maria, maria_token = staff.add("maria", frozenset({Role.DIRECT_ENROLLMENT_USER,
                                                       Role.MEMBER_ACCOUNT_MANAGER}))
    omar, omar_token = staff.add("omar", frozenset({Role.ADMINISTRATOR}))
    assert staff.authenticate(maria_token) == maria
    assert staff.authenticate(omar_token) == omar
    assert staff.authenticate(new_staff_token()) is None
    assert staff.authenticate("pbs_" + maria_token[4:].upper()) is None
    clock.advance(hours=1)
    # Another process (a CLI run) revokes: this directory refuses the token on the next call.
    revoked = directory(database, clock).revoke("maria")
    assert staff.authenticate(maria_token) is None
    assert staff.authenticate(omar_token) == omar
    listed = staff.list()
    assert [(e.name, e.roles, e.revoked_at) for e in listed] == [
        ("maria", maria.roles, revoked.revoked_at), ("omar", omar.roles, None)]
    assert listed[0].created_at == clock.current - timedelta(hours=1)
    with pytest.raises(Conflict, match="revoked already"):
        staff.revoke(maria.id)
    with pytest.raises(NotFound):
        staff.revoke("nobody")


def test_only_the_digest_of_a_token_is_stored(database: Engine) -> None:
    _principal, token = directory(database).add("maria", MANAGER)
    with database.connect() as conn:
        [row] = conn.execute(select(staff_users)).all()
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert all(token[4:] not in str(value) for value in row)


def test_a_name_is_taken_for_good_even_by_a_racing_add(database: Engine) -> None:
    staff = directory(database)
    staff.add("maria", MANAGER)
    with pytest.raises(Conflict):
        staff.add("maria", MANAGER)

    class Racing(SqlStaffDirectory):
        def _find(self, name_or_id: str) -> None:  # type: ignore[override]
            return None  # as if the other add committed between our check and our insert

    with pytest.raises(Conflict, match="exists already"):
        Racing(database, FixedClock(), SequentialIds()).add("maria", MANAGER)


def entry(**values: object) -> AuditEntry:
    fields: dict[str, object] = {"actor": "staff:maria", "action": "member.deactivate",
                                 "outcome": "success"}
    fields.update(values)
    return AuditEntry(**fields)  # type: ignore[arg-type]


def test_audit_append_and_query_filters(database: Engine) -> None:
    clock = FixedClock(step=timedelta(minutes=1))
    log = SqlAuditLog(database, clock)
    log.append(entry(member_id="m1", reason="moved away", detail={"channel": "workbench"}))
    log.append(entry(actor="cli:root", action="staff.add", detail={"staff_id": "s1"}))
    log.append(entry(member_id="m2", action="member.reactivate", outcome="refused"))
    log.append(entry(actor="staff:omar", action="staff.revoke", member_id="m1"))
    newest_first = log.query()
    assert [r.entry.action for r in newest_first] == [
        "staff.revoke", "member.reactivate", "staff.add", "member.deactivate"]
    assert newest_first[0].id > newest_first[-1].id
    oldest = newest_first[-1]
    assert oldest.entry.detail == {"channel": "workbench"} and oldest.entry.reason == "moved away"
    assert oldest.at.tzinfo is not None
    assert [r.entry.actor for r in log.query(member_id="m1")] == ["staff:omar", "staff:maria"]
    assert [r.entry.action for r in log.query(actor="cli:root")] == ["staff.add"]
    assert [r.entry.action for r in log.query(action="staff.*")] == ["staff.revoke", "staff.add"]
    assert [r.entry.actor for r in log.query(actor="staff:*", action="member.*")] == [
        "staff:maria", "staff:maria"]
    assert log.query(action="staff_*") == []  # a LIKE wildcard in the filter is only itself
    assert [r.entry.action for r in log.query(since=newest_first[1].at)] == [
        "staff.revoke", "member.reactivate"]
    assert len(log.query(limit=3)) == 3


def test_unit_of_work_audit_entries_commit_with_the_change_or_not_at_all(database: Engine) -> None:
    clock = FixedClock()
    with SqlUnitOfWork(database, clock=clock) as uow:
        uow.audit.add(entry(action="rolled.back"))
    with SqlUnitOfWork(database, clock=clock) as uow:
        uow.audit.add(entry(action="committed", member_id="m9"))
        uow.commit()
    [record] = SqlAuditLog(database, clock).query()
    assert (record.entry.action, record.entry.member_id, record.at) == ("committed", "m9", clock.current)


def test_the_audit_log_refuses_update_and_delete(database: Engine) -> None:
    SqlAuditLog(database, FixedClock()).append(entry())
    for statement in (update(audit_log).values(reason="rewritten"), delete(audit_log),
                      text("UPDATE audit_log SET outcome = 'failed' WHERE id > 0")):
        with pytest.raises(DBAPIError, match="append-only"), database.begin() as conn:
            conn.execute(statement)
    [record] = SqlAuditLog(database, FixedClock()).query()
    assert (record.entry.reason, record.entry.outcome) == ("", "success")
