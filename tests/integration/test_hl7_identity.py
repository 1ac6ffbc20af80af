"""Record keys and the merge family on the real store (SQLite and PostgreSQL), over MLLP."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from mpi.tables import source_records
from tests.integration.engine_harness import MllpConnection, msa, running_engine

# GHH is the facility's own authority (tests/conftest.py); LAB is another one.
PID = "PID|1||{ids}||SAMPLE^{given}||19800304|F"


def hl7(control: str, trigger: str, *segments: str, version: str = "2.5.1") -> bytes:
    msh = f"MSH|^~\\&|EMR|GHH|PB|PB|20260301101500||ADT^{trigger}|{control}|P|{version}"
    return "\r".join([msh, f"EVN|{trigger}|20260301101500", *segments]).encode()


def records(engine: object) -> list[tuple[str, str, str | None, str]]:
    """(authority, MRN, merged into, record id) of every GHH record."""
    query = select(source_records.c.authority, source_records.c.mrn, source_records.c.merged_into,
                   source_records.c.id).where(source_records.c.facility == "GHH")
    with engine.runtime.database.connect() as conn:  # type: ignore[attr-defined]
        return sorted(tuple(row) for row in conn.execute(query))


def test_identifiers_in_any_order_name_one_record_and_two_records_are_refused(
        database_url: str, rules_file: Path) -> None:
    with running_engine(database_url, rules_file) as engine:
        client = MllpConnection(engine.mllp_port)
        sent = [("K1", PID.format(ids="7^^^LAB~100", given="ONE")),
                ("K2", PID.format(ids="100^^^GHH^MR~7^^^LAB", given="TWO")),
                ("K3", PID.format(ids="200^^^GHH^MR", given="OTHER"))]
        for control, pid in sent:
            assert msa(client.exchange(hl7(control, "A08", pid)))[1] == "AA"
        assert [(a, m) for a, m, _, _ in records(engine)] == [("GHH", "100"), ("GHH", "200")]
        refused = client.exchange(hl7("K4", "A08", PID.format(ids="200^^^GHH^MR~100^^^GHH^MR",
                                                               given="BOTH")))
        assert msa(refused)[1] == "AR" and b"ERR||PID^1^3^1|205" in refused
        client.close()


def test_a_merge_finds_the_retired_record_by_any_mrg_1_repetition(database_url: str,
                                                                 rules_file: Path) -> None:
    with running_engine(database_url, rules_file) as engine:
        client = MllpConnection(engine.mllp_port)
        for control, mrn in (("R1", "100"), ("R2", "300")):
            assert msa(client.exchange(hl7(control, "A04", PID.format(ids=f"{mrn}^^^GHH^MR",
                                                                      given=mrn))))[1] == "AA"
        # A34 of v2.4, the retired record known by the second MRG-1 repetition only.
        merge = hl7("M1", "A34", PID.format(ids="100^^^GHH^MR", given="KEPT"),
                    "MRG|299^^^GHH^MR~300^^^GHH^MR", version="2.4")
        assert msa(client.exchange(merge))[1] == "AA"
        by_mrn = {m: (merged, record_id) for _, m, merged, record_id in records(engine)}
        assert set(by_mrn) == {"100", "300"}
        assert by_mrn["300"][0] == by_mrn["100"][1]
        client.close()
