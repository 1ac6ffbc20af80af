"""What must hold in a database however many writers wrote it (tests and the fault harness).

* Every patient's stored best demographics are what ranking its stored records gives: a
  writer that re-ranked from stale records (a lost update) leaves a patient that differs.
* Every subject's outbox rows carry the sequence numbers 1, 2, ... n, rising with the row id
  (the relay's order), none repeated and none missing.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Engine, select

from engine.store.tables import outbox
from mpi.ranking import TierOf, best_demographics
from mpi.rows import patient_from_row, record_from_row
from mpi.tables import patients, source_records


def index_problems(engine: Engine, tier_of: TierOf) -> list[str]:
    """Patients whose stored best demographics are not those of their stored records."""
    with engine.connect() as conn:
        stored = [patient_from_row(row) for row in conn.execute(select(patients)).mappings()]
        records = [record_from_row(row) for row in conn.execute(select(source_records)).mappings()]
    by_patient = defaultdict(list)
    for record in records:
        by_patient[record.patient_id].append(record)
    problems = []
    for patient in stored:
        expected = best_demographics(by_patient[patient.id], tier_of).demographics
        if expected.to_dict() != patient.best.to_dict():
            fields = [name for name, value in expected.to_dict().items()
                      if patient.best.to_dict()[name] != value]
            problems.append(f"patient {patient.id}: stored best differs from its records in {fields}")
    return problems


def sequence_problems(engine: Engine) -> list[str]:
    """Subjects whose outbox sequence numbers, in id order, are not exactly 1, 2, ... n."""
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.subject, outbox.c.sequence).order_by(outbox.c.id)).all()
    by_subject: dict[str, list[int]] = defaultdict(list)
    for subject, sequence in rows:
        by_subject[subject].append(sequence)
    return [f"subject {subject}: sequences {numbers[:20]}{'...' if len(numbers) > 20 else ''}"
            for subject, numbers in by_subject.items()
            if numbers != list(range(1, len(numbers) + 1))]
