"""Deferred journal entries: counted once, kept in order, bounded while the database is away."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.commands import Outcome, ResourceState
from engine.journal import JournalEntry, effects_of, is_refusal
from engine.journal_writer import JournalWriter
from mpi.index import PatientChange


def entry(n: int, outcome: str = "AR") -> JournalEntry:
    return JournalEntry(channel="mllp", sender="APP^GHH", control_id=f"c{n}", message_type="ADT^A08",
                        received_at=datetime(2026, 1, 1, tzinfo=UTC), outcome=outcome)


def test_deferred_entries_are_counted_kept_in_order_and_wake_the_writer_once() -> None:
    counted: list[str] = []
    wakes: list[int] = []
    journal = JournalWriter(enabled=True, observe=lambda e: counted.append(e.control_id))
    journal.wake_with(lambda: wakes.append(1))
    for n in range(3):
        journal.defer(entry(n))
    assert counted == ["c0", "c1", "c2"] and wakes == [1] and journal.waiting == 3
    taken = journal.take(most=2)
    assert [e.control_id for e in taken] == ["c0", "c1"]
    journal.give_back(taken)  # their commit failed: first in line again
    assert [e.control_id for e in journal.take()] == ["c0", "c1", "c2"]
    journal.committed([entry(9, "AA")])
    assert counted[-1] == "c9" and journal.waiting == 0


def test_past_the_limit_the_oldest_entries_go_and_are_counted() -> None:
    journal = JournalWriter(enabled=True, limit=2)
    for n in range(5):
        journal.defer(entry(n))
    assert journal.dropped == 3 and [e.control_id for e in journal.take()] == ["c3", "c4"]


def test_a_disabled_journal_counts_and_keeps_nothing() -> None:
    counted: list[JournalEntry] = []
    journal = JournalWriter(enabled=False, observe=counted.append)
    journal.defer(entry(1))
    assert len(counted) == 1 and journal.take() == []


def test_a_failing_counter_never_reaches_the_caller() -> None:
    def broken(_entry: JournalEntry) -> None:
        raise RuntimeError("bug")
    journal = JournalWriter(enabled=True, observe=broken)
    journal.defer(entry(1))
    assert journal.waiting == 1


def test_effects_are_ids_and_field_names_never_values() -> None:
    change = PatientChange(patient_id="p1", changed={"names": ("DOE", "ROE")}, identifiers=(),
                           winner_facility="GHH", winner_tier=1, created=False, merged_from=("p2",))
    outcome = Outcome("applied", ("p1",), events=1, changes=(change,),
                      resource=ResourceState("r1", 2, created=False, changed=True))
    effects = effects_of(outcome)
    assert effects == {"status": "applied", "events": 1,
                       "patients": [{"id": "p1", "fields": ["names"], "merged_from": ["p2"]}],
                       "record": {"id": "r1", "version": 2, "created": False, "changed": True}}
    assert "DOE" not in repr(effects) and "ROE" not in repr(effects)
    assert effects_of(Outcome("applied", parts=(Outcome("duplicate"),))) == {
        "status": "applied", "parts": [{"status": "duplicate"}]}


def test_refusals_are_ar_and_http_client_errors() -> None:
    assert [is_refusal(code) for code in ("AR", "AE", "AA", "422", "404", "503", "201")] == [
        True, False, False, True, True, False, False]
