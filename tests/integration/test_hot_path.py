"""What the group commit's hot path reads: nothing it can know without asking the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import IntegrityError, StatementError

from engine.commands import MessageOrigin, UpsertPatientRecord
from engine.handlers import MessageBus
from engine.rules import parse_rules
from engine.store.member_tables import members
from engine.store.sql_uow import SqlUnitOfWork
from engine.store.tables import inbound_messages
from mpi.bulk import _chunk_sizes, insert_rows, update_rows
from mpi.locks import _INVOLVED, _LOCK_PATIENTS_HOLDING, LOCK_NAMESPACE, text_array
from mpi.model import Demographics, DemographicsUpdate, Identifier, PersonName, RecordKey
from mpi.tables import patients
from tests.fakes import FixedClock, SequentialIds

RULES = """
facilities: [{code: NORTH, tier: 1, assigning_authority: NGH}]
routes: [{action: upsert_patient}]
events: {mpi_changed_for: members}
"""


def _upsert(mrn: str, family: str = "Everyman", control_id: str = "") -> UpsertPatientRecord:
    values: dict[str, Any] = {"identifiers": (Identifier(mrn, "NGH", "MR"),),
                              "names": (PersonName(family, ("Adam",)),)}
    return UpsertPatientRecord(
        origin=MessageOrigin(channel="mllp", sender="APP^NORTH", control_id=control_id or f"c-{mrn}",
                             message_type="ADT^A04", facility="NORTH"),
        key=RecordKey("NORTH", "NGH", mrn),
        update=DemographicsUpdate(Demographics(**values), frozenset(values)))


def test_new_patients_need_no_member_lookup(database: Engine) -> None:
    """With mpi.changed for members only, a patient created in the group cannot be a member:
    its event is decided without a query of the members table (a round trip per message)."""
    statements: list[str] = []
    event.listen(database, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: statements.append(statement))
    bus = MessageBus(parse_rules(RULES), FixedClock(), SequentialIds())
    commands = [_upsert(str(n)) for n in range(5)]
    with SqlUnitOfWork(database) as uow:
        bus.prefetch(commands, uow)
        outcomes = [bus.handle(command, uow) for command in commands]
        uow.commit()
    assert [o.status for o in outcomes] == ["applied"] * 5 and all(o.events == 0 for o in outcomes)
    assert not [s for s in statements if "FROM members" in s]


def test_the_locked_prefetch_looks_identifiers_up_by_index_without_statistics(pg_engine: Engine) -> None:
    """A young index has no statistics yet (autovacuum has not analyzed it): the prefetch must
    still look each identifier up by index, not scan every identifier of every group."""
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO mpi_identifiers (record_id, authority, value, type_code, patient_id)"
            " SELECT 'r' || n, 'NGH', n::text, 'MR', 'p' || n FROM generate_series(1, 5000) AS n")
        params = {"namespace": LOCK_NAMESPACE, "authorities": ["NGH"] * 16,
                  "ident_values": [str(n) for n in range(16)]}
        driver: Any = conn.connection.driver_connection
        for statement in (_LOCK_PATIENTS_HOLDING, _INVOLVED):
            plan = "\n".join(row[0] for row in driver.execute(f"EXPLAIN {statement}", params))
            assert "Seq Scan on mpi_identifiers" not in plan, plan
        conn.rollback()


def test_members_of_updated_patients_are_read_with_the_prefetch(database: Engine) -> None:
    """Updates of existing patients: whether each is a member decides its event. On PostgreSQL
    the members are read in the locked prefetch's round trip (no statement of their own);
    a member's change is still an event, a non-member's is not."""
    bus = MessageBus(parse_rules(RULES), FixedClock(), SequentialIds())
    with SqlUnitOfWork(database) as uow:
        bus.prefetch([_upsert("1"), _upsert("2")], uow)
        for command in (_upsert("1"), _upsert("2")):
            bus.handle(command, uow)
        uow.commit()
    with database.begin() as conn:
        patient = conn.exec_driver_sql(
            "SELECT patient_id FROM mpi_source_records WHERE mrn = '1'").scalar_one()
        now = datetime.now(UTC)
        conn.execute(members.insert().values(
            id="m1", patient_id=patient, enrollment_status="Yes", membership_status="pending",
            status_since=now, email="a@example.org", mobile="", carrier="", communication="email",
            locale="en", proxy_only=False, mode="automated", enrolled_by="t", enrolled_at=now,
            printed_activation=False, password_history="[]", version=1, updated_at=now))
    statements: list[str] = []
    event.listen(database, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: statements.append(statement))
    updates = [_upsert(mrn, family="Changed", control_id=f"u-{mrn}") for mrn in ("1", "2")]
    with SqlUnitOfWork(database) as uow:
        bus.prefetch(updates, uow)
        outcomes = [bus.handle(command, uow) for command in updates]
        uow.commit()
    assert [o.events for o in outcomes] == [1, 0]
    if database.dialect.name == "postgresql":
        assert not [s for s in statements if "FROM members" in s]


ODD_VALUES = ['a"b', "c\\d", "e,f", "{g}", "NULL", " spaced ", "", "ünï", "x\\\"y", "'q'"]


def test_identifiers_travel_as_one_array_literal_each(pg_engine: Engine) -> None:
    """The prefetch sends a group's identifiers as array literals it builds itself: every
    value comes back from PostgreSQL exactly as it went in, whatever it holds."""
    with pg_engine.connect() as conn:
        driver: Any = conn.connection.driver_connection
        row = driver.execute("SELECT %s::text[]", [text_array(ODD_VALUES)]).fetchone()
        assert row[0] == ODD_VALUES
        assert driver.execute("SELECT %s::text[]", [text_array([])]).fetchone()[0] == []


def test_a_record_with_odd_identifier_values_is_found_again(database: Engine) -> None:
    bus = MessageBus(parse_rules(RULES), FixedClock(), SequentialIds())
    commands = [_upsert(value or "empty", control_id=f"o-{n}") for n, value in enumerate(ODD_VALUES)]
    for round_ in ("create", "update"):
        with SqlUnitOfWork(database) as uow:
            bus.prefetch(commands, uow)
            outcomes = [bus.handle(command, uow) for command in commands]
            uow.commit()
        assert all(o.status == "applied" for o in outcomes), round_
        commands = [_upsert(value or "empty", family="Other", control_id=f"p-{n}")
                    for n, value in enumerate(ODD_VALUES)]
    with database.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM mpi_patients").scalar_one() == len(ODD_VALUES)


def test_many_rows_go_in_chunks_of_powers_of_two(database: Engine) -> None:
    """77 rows: multi-row inserts of 64, 8, 4 and 1 rows on PostgreSQL, every row stored."""
    assert _chunk_sizes(77) == [64, 8, 4, 1] and _chunk_sizes(130) == [64, 64, 2]
    at = datetime.now(UTC)
    rows = [{"sender": "S", "control_id": f"c{n}", "channel": "mllp", "message_type": "ADT^A08",
             "outcome": "applied", "patient_ids": "", "received_at": at} for n in range(77)]
    with database.begin() as conn:
        insert_rows(conn, inbound_messages, rows)
    with database.connect() as conn:
        stored = conn.exec_driver_sql("SELECT control_id FROM inbound_messages").scalars().all()
    assert sorted(stored) == sorted(row["control_id"] for row in rows)


def test_a_commit_overlapping_other_work_is_answered_before_it_returns(database: Engine) -> None:
    """``meanwhile`` runs once, and the commit's outcome is known when it returns: committed
    rows are visible to another connection, a refused commit raises and keeps nothing."""
    bus = MessageBus(parse_rules(RULES), FixedClock(), SequentialIds())
    ran: list[int] = []
    command = _upsert("overlap-1")
    with SqlUnitOfWork(database) as uow:
        bus.prefetch([command], uow)
        bus.handle(command, uow)
        uow.commit_overlapping(lambda: ran.append(1))
    with database.connect() as other:
        assert other.execute(select(inbound_messages.c.control_id).where(
            inbound_messages.c.control_id == "c-overlap-1")).scalar_one() == "c-overlap-1"
    # The same message again, without the inbox check: its inbox row conflicts at commit
    # (on PostgreSQL raised as soon as the pipeline reads the server's answer: at its end,
    # after ``meanwhile``, or while the writes are still being sent, before it; on SQLite
    # by the insert itself).
    again = _upsert("overlap-1", family="Other")
    with pytest.raises((IntegrityError, psycopg.IntegrityError)), \
            SqlUnitOfWork(database, check_inbox=False) as uow:
        bus.prefetch([again], uow)
        bus.handle(again, uow)
        uow.commit_overlapping(lambda: ran.append(2))
    assert ran in ([1, 2], [1]) if database.dialect.name == "postgresql" else ran == [1]
    with database.connect() as other:
        assert other.execute(select(func.count()).select_from(inbound_messages).where(
            inbound_messages.c.control_id == "c-overlap-1")).scalar_one() == 1


def _patient_row(n: int, best: str, at: datetime, winner_tier: int | None = 1) -> dict[str, Any]:
    return {"id": f"p{n}", "merged_into": None, "best": best, "provenance": "{}",
            "winner_facility": "NORTH", "winner_tier": winner_tier, "created_at": at, "updated_at": at}


def test_many_rows_are_updated_by_a_few_statements_each_to_its_own_values(database: Engine) -> None:
    """13 patients updated at once (8 + 4 + 1 rows on PostgreSQL): each gets its own values,
    NULLs and integers included; rows naming one key twice are applied in their order."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with database.begin() as conn:
        insert_rows(conn, patients, [_patient_row(n, "{}", at) for n in range(15)])
    later = datetime(2026, 2, 1, 12, 30, tzinfo=UTC)
    with database.begin() as conn:
        update_rows(conn, patients, "id", [
            _patient_row(n, f'{{"n": {n}}}', later, winner_tier=None if n % 2 else n) for n in range(13)])
        update_rows(conn, patients, "id", [_patient_row(14, "first", later),
                                           _patient_row(14, "second", later)])
    with database.connect() as conn:
        stored = {row.id: row for row in conn.execute(select(patients))}
    for n in range(13):
        assert stored[f"p{n}"].best == f'{{"n": {n}}}' and stored[f"p{n}"].updated_at == later
        assert stored[f"p{n}"].winner_tier == (None if n % 2 else n)
    assert stored["p13"].best == "{}" and stored["p13"].updated_at == at
    assert stored["p14"].best == "second"


def test_a_multi_row_update_refuses_a_value_too_long_rather_than_cutting_it(pg_engine: Engine) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with pg_engine.begin() as conn:
        insert_rows(conn, patients, [_patient_row(n, "{}", at) for n in range(2)])
    too_long = [{**_patient_row(n, "{}", at), "winner_facility": "X" * 500} for n in range(2)]
    with pytest.raises(psycopg.errors.StringDataRightTruncation), pg_engine.begin() as conn:
        update_rows(conn, patients, "id", too_long)


def test_odd_values_of_every_column_type_are_updated_through_array_literals(database: Engine) -> None:
    """Updated by one set-based statement on PostgreSQL: strings that look like array syntax
    or NULL, aware datetimes with microseconds, integers and NULLs come back as they went."""
    at = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    with database.begin() as conn:
        insert_rows(conn, patients, [_patient_row(n, "{}", at) for n in range(len(ODD_VALUES))])
    later = datetime(2027, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    rows = [{**_patient_row(n, value, later, winner_tier=None if n % 2 else 2**30 + n),
             "provenance": value, "merged_into": None if n % 3 else value}
            for n, value in enumerate(ODD_VALUES)]
    with database.begin() as conn:
        update_rows(conn, patients, "id", rows)
    with database.connect() as conn:
        stored = {row.id: row for row in conn.execute(select(patients))}
    for row in rows:
        got = stored[row["id"]]
        assert (got.best, got.provenance, got.merged_into, got.winner_tier, got.updated_at) == (
            row["best"], row["provenance"], row["merged_into"], row["winner_tier"], later)


def test_a_naive_datetime_is_refused_and_an_unexpected_value_still_stored(database: Engine) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with database.begin() as conn:
        insert_rows(conn, patients, [_patient_row(n, "{}", at) for n in (1, 2)])
    with pytest.raises((ValueError, StatementError)), database.begin() as conn:
        update_rows(conn, patients, "id", [_patient_row(1, "{}", at.replace(tzinfo=None))])
    # A float in an integer column is not written as an array element: bound as it is.
    with database.begin() as conn:
        update_rows(conn, patients, "id", [{**_patient_row(2, "{}", at), "winner_tier": 3.0}])
    with database.connect() as conn:
        assert conn.execute(select(patients.c.winner_tier).where(patients.c.id == "p2")).scalar_one() == 3


def test_a_groups_updates_of_a_table_are_one_statement(pg_engine: Engine) -> None:
    """13 patients updated by one UPDATE on PostgreSQL, counted by a statement-level trigger:
    one statement per row (executemany) or per chunk (8 + 4 + 1) would fire it 13 or 3 times.
    The counting objects are temporary: the shared schema stays what the migrations made."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with pg_engine.connect() as conn:
        insert_rows(conn, patients, [_patient_row(n, "{}", at) for n in range(13)])
        conn.exec_driver_sql("CREATE TEMPORARY TABLE update_statements (n int)")
        conn.exec_driver_sql(
            "CREATE FUNCTION pg_temp.count_update() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN INSERT INTO update_statements VALUES (1); RETURN NULL; END $$")
        conn.exec_driver_sql("CREATE TRIGGER counted AFTER UPDATE ON mpi_patients"
                             " FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.count_update()")
        try:
            update_rows(conn, patients, "id", [_patient_row(n, "[]", at) for n in range(13)])
            assert conn.exec_driver_sql("SELECT count(*) FROM update_statements").scalar_one() == 1
            assert conn.exec_driver_sql(
                "SELECT count(*) FROM mpi_patients WHERE best = '[]'").scalar_one() == 13
        finally:
            conn.rollback()  # the rows, the trigger and the function go with the transaction
