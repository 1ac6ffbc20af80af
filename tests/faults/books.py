"""Keeping the books after a run: what was sent and answered, what was stored and published,
what arrived downstream, and every way the three disagree."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from engine.store.database import open_database
from engine.store.tables import inbound_messages, outbox
from mpi.rows import patient_from_row
from mpi.tables import patients
from tests.faults.events import Subscriber
from tests.faults.feed import FACILITIES, Tally
from tests.integration.consistency import index_problems, sequence_problems

TIERS = {"NORTH": 1, "EAST": 2}


@dataclass
class Books:
    """The table of counts, and the violations (a run passes when there are none)."""

    rows: list[tuple[str, int]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        width = max(len(name) for name, _ in self.rows)
        lines = [*self.notes, "", f"| {'count':<{width}} | {'value':>9} |",
                 f"|{'-' * (width + 2)}|{'-' * 11}|"]
        lines += [f"| {name:<{width}} | {number:>9,} |" for name, number in self.rows]
        lines.append("")
        lines.append("violations: none" if not self.violations else
                     "VIOLATIONS:\n" + "\n".join(f"  - {v}" for v in self.violations[:40]))
        return "\n".join(lines)


def keep_books(database_url: str, tally: Tally, subscriber: Subscriber, patients_count: int) -> Books:
    engine = open_database(database_url)
    try:
        return _books(engine, tally, subscriber, patients_count)
    finally:
        engine.dispose()


def _books(engine: Engine, tally: Tally, subscriber: Subscriber, patients_count: int) -> Books:
    with engine.connect() as conn:
        stored = set(conn.execute(select(inbound_messages.c.control_id)).scalars())
        rows = conn.execute(select(outbox.c.event_id, outbox.c.correlation_id, outbox.c.status)).all()
    effects = Counter(correlation for _, correlation, _ in rows)
    books = Books()
    twice = sorted(c for c, n in effects.items() if n > 1)
    without = sorted(c for c in tally.accepted if c not in stored or c not in effects)
    arrival_problems = _arrival_problems(subscriber)
    missing = {event_id for event_id, _, _ in rows} - subscriber.seen
    lost = _lost_updates(engine, tally, patients_count)
    in_outbox = sequence_problems(engine)
    books.rows = [
        ("messages sent (distinct control ids)", tally.messages),
        ("sends, resends included", tally.sends),
        ("AA", tally.answers["AA"]), ("AE", tally.answers["AE"]), ("AR", tally.answers["AR"]),
        ("no answer (connection lost or silent)", tally.answers["lost"]),
        ("stored (inbox rows)", len(stored)),
        ("outbox rows", len(rows)),
        ("outbox rows not published", sum(1 for *_, status in rows if status != "sent")),
        ("events received (distinct ids)", len(subscriber.seen)),
        ("duplicates received (redeliveries)", subscriber.deliveries - len(subscriber.seen)),
        ("per-patient sequence violations received", len(arrival_problems)),
        ("repeated or missing sequence numbers (outbox)", len(in_outbox)),
        ("AA without its effect", len(without)),
        ("effects applied twice", len(twice)),
        ("events never received", len(missing)),
        ("lost updates (final state)", len(lost)),
    ]
    books.violations = [
        *(f"AA without its effect: {c}" for c in without),
        *(f"applied twice: {c} has {effects[c]} events" for c in twice),
        *(f"outbox: {p}" for p in in_outbox), *arrival_problems,
        *(f"event never received: {e}" for e in sorted(missing)), *lost,
        *(f"refused (AR): {c}" for c in sorted(tally.refused)),
        *(f"stored but never acknowledged AA: {c}" for c in sorted(stored - tally.accepted)),
        *index_problems(engine, TIERS.__getitem__),
    ]
    return books


def _arrival_problems(subscriber: Subscriber) -> list[str]:
    """Per subject, first arrivals must carry 1, 2, 3, ... in that order."""
    seen: dict[str, list[int]] = defaultdict(list)
    for arrival in subscriber.first:
        seen[arrival.subject].append(arrival.sequence)
    return [f"events of {subject} arrived as {numbers[:12]}..."
            for subject, numbers in seen.items() if numbers != list(range(1, len(numbers) + 1))]


def _lost_updates(engine: Engine, tally: Tally, patients_count: int) -> list[str]:
    """Every patient once, holding the last value each of its two streams had AA'd."""
    with engine.connect() as conn:
        stored = [patient_from_row(r) for r in conn.execute(select(patients)).mappings()]
    found: dict[int, dict[str, str]] = {}
    problems = []
    for patient in stored:
        numbers = {int(i.value[1:]) for i in patient.best.identifiers if i.authority == "NGH"}
        if len(numbers) != 1:
            problems.append(f"patient {patient.id} holds NORTH records {sorted(numbers)}")
            continue
        number = numbers.pop()
        if number in found:
            problems.append(f"patient {number} was split into two MPI patients")
        names, phones = patient.best.names, patient.best.phones
        found[number] = {"NORTH": names[0].family if names else "",
                         "EAST": phones[0].value if phones else ""}
    for number in range(patients_count):
        for facility in FACILITIES:
            expected = tally.last.get((facility, number))
            actual = found.get(number, {}).get(facility)
            if expected is not None and actual != expected:
                problems.append(f"lost update: patient {number} {facility} is {actual!r}, "
                                f"last acknowledged {expected!r}")
    return problems
