"""Best demographics: lowest tier first, then latest create/update, field by field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mpi.model import Demographics, Identifier, PersonName, RecordKey, SourceRecord, Telecom
from mpi.ranking import best_demographics, rank_records

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TIERS = {"GOLD": 1, "SILVER": 2, "BRONZE": 3}


def record(facility: str, family: str, *, minutes: int = 0, email: str = "",
           merged: bool = False, rid: str | None = None) -> SourceRecord:
    demographics = Demographics(
        identifiers=(Identifier("1", "ENT", "MR"),), names=(PersonName(family, ("ANN",)),),
        emails=(Telecom("email", email),) if email else ())
    stamp = T0 + timedelta(minutes=minutes)
    return SourceRecord(id=rid or f"{facility}-{family}", key=RecordKey(facility, "ENT", "1"),
                        patient_id="p", demographics=demographics, created_at=T0, updated_at=stamp,
                        merged_into="x" if merged else None)


def test_the_lowest_tier_wins_even_when_older() -> None:
    best = best_demographics([record("SILVER", "NEWER", minutes=30), record("GOLD", "OLDER")],
                             TIERS.__getitem__)
    assert best.demographics.names[0].family == "OLDER"
    assert (best.winner_facility, best.winner_tier) == ("GOLD", 1)
    assert best.provenance["names"] == "GOLD"


def test_within_a_tier_the_latest_update_wins() -> None:
    ranked = rank_records([record("GOLD", "EARLY", minutes=1, rid="a"),
                           record("GOLD", "LATE", minutes=9, rid="b")], TIERS.__getitem__)
    assert [r.demographics.names[0].family for r in ranked] == ["LATE", "EARLY"]


def test_a_field_the_winner_lacks_comes_from_the_next_record_in_rank() -> None:
    best = best_demographics([record("GOLD", "GOLDNAME"),
                              record("BRONZE", "BRONZENAME", email="b@example.org")],
                             TIERS.__getitem__)
    assert best.demographics.names[0].family == "GOLDNAME"
    assert best.demographics.emails[0].value == "b@example.org"
    assert best.provenance == {"names": "GOLD", "emails": "BRONZE"}


def test_merged_records_do_not_rank_and_no_records_mean_nothing_known() -> None:
    best = best_demographics([record("GOLD", "GONE", merged=True), record("SILVER", "KEPT")],
                             TIERS.__getitem__)
    assert best.demographics.names[0].family == "KEPT"
    empty = best_demographics([], TIERS.__getitem__)
    assert empty.demographics == Demographics() and empty.winner_tier is None


def test_identifiers_are_the_union_of_all_active_records() -> None:
    a = record("GOLD", "A")
    b = record("SILVER", "B")
    b.demographics = Demographics(identifiers=(Identifier("9", "OTHER", "MR"), Identifier("1", "ENT", "MR")))
    best = best_demographics([a, b], TIERS.__getitem__)
    assert best.demographics.identifiers == (Identifier("1", "ENT", "MR"), Identifier("9", "OTHER", "MR"))
