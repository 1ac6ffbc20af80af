"""What a writer of the index locks on PostgreSQL, and the one-round-trip locked read.

The rule (README, "Production shape and scale-out"): a unit of work locks everything its
change really touches before it reads it, and keeps the locks until it ends.

* **Identifiers** it looks up: a transaction-scoped advisory lock per (authority, value).
  "Which patient holds this identifier, if any?" has no row to lock when the answer is
  "none", and two writers receiving one person under different identifiers at once would
  each miss the other's uncommitted record and create two patients.
* **Patients** it reads to change: their ``mpi_patients`` rows, ``FOR UPDATE``. Two writers
  updating one patient through different facilities' records would otherwise each re-rank
  the patient from what it read and the second would overwrite the first's best
  demographics (a lost update). A merge locks every patient it involves.

Locks are taken in a fixed order, identifiers (by hash) before patients (by id), so two
writers cannot wait for each other; what is read under the locks is read by a statement
that starts after they were granted, so it sees every change committed before. A lock that
cannot be had within the lock timeout fails the unit of work (a transient failure, retried
by the sender); a deadlock between locks taken late (rare, see ``SqlMpiRepository``) is
broken by PostgreSQL and retried at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from psycopg.rows import dict_row
from sqlalchemy import Connection

from mpi.arrays import array_literal, text_element
from mpi.tables import patients

__all__ = ["LOCK_NAMESPACE", "PATIENTS_HOLDING", "Rider", "lock_identifiers", "lock_patients",
           "locked_prefetch", "text_array"]

IdentKey = tuple[str, str]

#: Advisory locks of the index: (namespace, hash of "authority|value"). The relay uses 0x5042.
LOCK_NAMESPACE = 0x4D50  # "MP"

# The SQL texts are composed of constants only; every value is a bound parameter.
_IDENTS = "unnest(%(authorities)s::text[], %(ident_values)s::text[]) AS w(authority, value)"
_LOCK_IDENTIFIERS = (
    "SELECT count(pg_advisory_xact_lock(%(namespace)s, h)) FROM (SELECT DISTINCT"  # noqa: S608
    f" hashtext(w.authority || '|' || w.value) AS h FROM {_IDENTS} ORDER BY h) AS locks"
)
#: One index lookup per identifier, whatever the planner believes of the table: a plain join
#: is planned as a hash join over a sequential scan of ``mpi_identifiers`` while the table's
#: statistics are missing or stale (a young or fast-growing index), 1-2 ms a group at a few
#: thousand rows and growing with the table. ``OFFSET 0`` keeps the lateral subquery from
#: being flattened into that join.
PATIENTS_HOLDING = (
    f"SELECT i.patient_id FROM {_IDENTS} CROSS JOIN LATERAL"  # noqa: S608
    " (SELECT patient_id FROM mpi_identifiers"
    " WHERE authority = w.authority AND value = w.value OFFSET 0) AS i"
)
_LOCK_PATIENTS_HOLDING = (
    f"SELECT id FROM mpi_patients WHERE id IN ({PATIENTS_HOLDING}) ORDER BY id FOR UPDATE"  # noqa: S608
)
_LOCK_PATIENTS = "SELECT id FROM mpi_patients WHERE id = ANY(%(ids)s::text[]) ORDER BY id FOR UPDATE"
_PATIENT_COLUMNS = ", ".join(f"p.{c.name} AS p_{c.name}" for c in patients.c)
#: Every record of every patient holding one of the identifiers, with its patient's columns
#: (prefixed ``p_``). One SQL text whatever the group's size: prepared and planned once.
_INVOLVED = (
    f"SELECT r.*, {_PATIENT_COLUMNS}"  # noqa: S608 - column names from our metadata; values are bound
    " FROM mpi_source_records r LEFT OUTER JOIN mpi_patients p ON p.id = r.patient_id"
    f" WHERE r.patient_id IN ({PATIENTS_HOLDING})"
)


#: A read of another store that joins the prefetch's round trip: SQL text over the same
#: parameters (``PATIENTS_HOLDING`` names the patients holding the group's identifiers), and
#: what takes its rows (as dicts) with the ids of the patients the prefetch locked.
Rider = tuple[str, Callable[[list[dict[str, Any]], set[str]], None]]


def _driver(conn: Connection) -> Any:
    return conn.connection.driver_connection


def _ident_params(idents: list[IdentKey]) -> dict[str, Any]:
    return {"namespace": LOCK_NAMESPACE, "authorities": text_array([a for a, _ in idents]),
            "ident_values": text_array([v for _, v in idents])}


def text_array(values: Sequence[str]) -> str:
    """``values`` as a PostgreSQL array literal, for a parameter the statement casts to
    ``text[]``: every element quoted, backslashes and quotes escaped. Built once per group
    and sent as one string, it costs a few microseconds where psycopg's list adaptation took
    36 for each statement that carries the group's identifiers (the prefetch has four)."""
    return array_literal(values, text_element)


def locked_prefetch(conn: Connection, idents: list[IdentKey],
                    riders: Sequence[Rider] = ()) -> tuple[set[str], list[dict[str, Any]]]:
    """Lock the identifiers, then the patients holding them, then read every record of those
    patients (with the patient's columns): the patient ids locked, and the rows.

    BEGIN, the locks and the read travel in one psycopg pipeline, one round trip; SQLAlchemy
    cannot read results inside a pipeline, so this uses the driver directly. The read is a
    statement of its own, so its snapshot is taken after every lock was granted. A record may
    still name a patient that is not locked (a concurrent merge moved it between the lock and
    the read): the caller locks those too and reads again. ``riders`` are reads of other
    stores sent in the same pipeline after the read (see ``Rider``).
    """
    driver = _driver(conn)
    params = _ident_params(idents)
    with driver.pipeline():
        driver.execute(_LOCK_IDENTIFIERS, params)
        locking = driver.cursor()
        locking.execute(_LOCK_PATIENTS_HOLDING, params)
        reading = driver.cursor(row_factory=dict_row)
        reading.execute(_INVOLVED, params)
        riding = []
        for sql, _take in riders:
            cursor = driver.cursor(row_factory=dict_row)
            cursor.execute(sql, params)
            riding.append(cursor)
    locked = {row[0] for row in locking.fetchall()}
    rows: list[dict[str, Any]] = reading.fetchall()
    for (_sql, take), cursor in zip(riders, riding, strict=True):
        take(cursor.fetchall(), locked)
    return locked, rows


def lock_identifiers(conn: Connection, idents: list[IdentKey]) -> None:
    """Advisory-lock identifiers looked up after the prefetch (rare: out of the fixed order)."""
    _driver(conn).execute(_LOCK_IDENTIFIERS, _ident_params(idents))


def lock_patients(conn: Connection, patient_ids: list[str]) -> None:
    """Lock these patients' rows, in id order."""
    _driver(conn).execute(_LOCK_PATIENTS, {"ids": text_array(sorted(patient_ids))})
