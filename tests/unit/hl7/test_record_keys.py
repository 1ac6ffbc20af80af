"""Record keys from several or untyped PID-3 identifiers: one rule, whatever the order, and
an AR when the identifiers name two different records of the facility."""

from __future__ import annotations

import pytest

from mpi.keys import record_key_identifier
from mpi.model import Identifier
from tests.unit.hl7.pipeline import Pipeline, message

PID_TAIL = "||SAMPLE^TOBIAS||19700304|M"


def pid(identifiers: str) -> str:
    return f"PID|1||{identifiers}{PID_TAIL}"


@pytest.mark.parametrize(("identifiers", "expected"), [
    # The facility's own authority first, whatever the types.
    ((Identifier("7", "EMPI", "MR"), Identifier("100", "NGH", "PI")), Identifier("100", "NGH", "PI")),
    # Then the preference list, in its order, before any other authority.
    ((Identifier("7", "EMPI", "MR"), Identifier("900", "ECC", "")), Identifier("900", "ECC", "")),
    # Within one authority: MR before other types, untyped before unknown types.
    ((Identifier("5", "NGH", "AN"), Identifier("6", "NGH", ""), Identifier("7", "NGH", "MR")),
     Identifier("7", "NGH", "MR")),
    ((Identifier("5", "NGH", "AN"), Identifier("6", "NGH", "")), Identifier("6", "NGH", "")),
    # An account number never keys a record while a patient identifier is there...
    ((Identifier("5", "NGH", "AN"), Identifier("7", "EMPI", "MR")), Identifier("7", "EMPI", "MR")),
    # ... but does when it is all there is.
    ((Identifier("5", "NGH", "AN"), Identifier("6", "EMPI", "VN")), Identifier("5", "NGH", "AN")),
    # Two of the same rank: the smaller value, so the answer never depends on order.
    ((Identifier("200", "NGH", "MR"), Identifier("100", "NGH", "MR")), Identifier("100", "NGH", "MR")),
    # SSNs and identifiers without an authority never key a record.
    ((Identifier("123-45-6789", "SSA", "SS"), Identifier("8", "", "MR")), None),
])
def test_the_key_rule_ranks_authority_then_type_then_value(
        identifiers: tuple[Identifier, ...], expected: Identifier | None) -> None:
    order = ("NGH", "ECC")
    assert record_key_identifier(identifiers, order) == expected
    assert record_key_identifier(tuple(reversed(identifiers)), order) == expected


@pytest.mark.parametrize("pid3", [
    "900^^^ECC~100",  # untyped, the second without an authority: the facility's (NGH)
    "100^^^NGH^MR~200^^^NGH^MR~900^^^ECC^MR",  # several MRs
])
def test_the_same_patient_in_another_order_is_the_same_record(pid3: str) -> None:
    pipeline = Pipeline()
    first = pipeline.send(message(pid(pid3), control="K1"))
    reordered = "~".join(reversed(pid3.split("~")))
    second = pipeline.send(message(pid(reordered).replace("SAMPLE", "SAMPLE-ROSS"), control="K2"))
    assert (first.code, second.code) == ("AA", "AA")
    [record] = pipeline.records()
    assert (record.key.authority, record.key.mrn) == ("NGH", "100")
    assert record.demographics.names[0].family == "SAMPLE-ROSS"


def test_the_authority_preference_of_routing_yaml_picks_the_key() -> None:
    pipeline = Pipeline()
    assert pipeline.send(message(pid("7^^^EMPI^MR~900^^^ECC^PI"))).code == "AA"
    [record] = pipeline.records()
    assert (record.key.authority, record.key.mrn) == ("ECC", "900")


def test_a_record_keyed_by_another_identifier_is_found_by_it_and_updated() -> None:
    pipeline = Pipeline()
    pipeline.send(message(pid("7^^^EMPI^MR"), control="K1"))  # the only identifier: keyed by it
    ack = pipeline.send(message(pid("100^^^NGH^MR~7^^^EMPI^MR").replace("19700304", "19700305"),
                                control="K2"))
    assert ack.code == "AA"
    [record] = pipeline.records()
    assert (record.key.authority, record.key.mrn) == ("EMPI", "7")
    assert record.demographics.birth_date == "1970-03-05"
    assert Identifier("100", "NGH", "MR") in record.demographics.identifiers


def test_identifiers_naming_two_records_of_one_facility_are_refused_with_err() -> None:
    pipeline = Pipeline()
    pipeline.send(message(pid("100^^^NGH^MR"), control="K1"))
    pipeline.send(message("PID|1||200^^^NGH^MR||OTHER^PERSON||19500101|F", control="K2"))
    before = [(r.id, r.version) for r in pipeline.records()]
    ack = pipeline.send(message(pid("200^^^NGH^MR~100^^^NGH^MR"), control="K3"))
    assert ack.code == "AR"
    assert "name 2 different records of facility NORTH" in ack.text
    err = ack["ERR"]
    assert (err[2], err[3].split("^")[0]) == ("PID^1^3^1", "205")
    assert "100 of NGH" in err[8] and "200 of NGH" in err[8]
    assert [(r.id, r.version) for r in pipeline.records()] == before


def test_after_a_merge_the_old_and_new_numbers_together_name_the_survivor() -> None:
    pipeline = Pipeline()
    pipeline.send(message(pid("100^^^NGH^MR"), control="K1"))
    pipeline.send(message(pid("200^^^NGH^MR"), control="K2"))
    merged = pipeline.send(message(pid("100^^^NGH^MR"), "MRG|200^^^NGH^MR", trigger="A40",
                                   control="K3"))
    assert merged.code == "AA"
    ack = pipeline.send(message(pid("200^^^NGH^MR~100^^^NGH^MR").replace("|M", "|F"), control="K4"))
    assert ack.code == "AA", ack.text
    assert pipeline.record("NGH", "100").demographics.sex == "female"
    assert pipeline.record("NGH", "200").merged_into == pipeline.record("NGH", "100").id
