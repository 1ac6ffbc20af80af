"""ADT to commands: PID mapping, HL7 update semantics, merge and identifier-change groups."""

from __future__ import annotations

import pytest

from engine.commands import ChangePatientIdentifier, MergePatientRecords, UpsertPatientRecord
from engine.errors import InvalidMessage
from engine.routing import Router
from engine.rules import RoutingRules
from inbound.hl7.adt import translate
from inbound.hl7.header import read_header
from inbound.hl7.reader import parse
from mpi.model import Address, Identifier, PersonName, RecordKey, Telecom
from tests.unit.hl7.hl7_corpus import corpus_messages

MSH = "MSH|^~\\&|APP|GHH|PB|PB|20260101120000||ADT^{trigger}|C1|P|2.5.1\r"


def command_for(text: str, rules: RoutingRules) -> object:
    message = parse(text)
    header = read_header(message)
    command, _ = translate(message, header, Router(rules).route(header.route_request()))
    return command


def pid_with(**fields: str) -> str:
    """A PID segment with MRN 1 at GHH in PID-3 and the given fields, e.g. pid_with(f7="1999")."""
    values = {3: "1^^^GHH^MR", **{int(k[1:]): v for k, v in fields.items()}}
    return "PID|" + "|".join(values.get(n, "") for n in range(1, max(values) + 1))


def upsert_for(pid: str, rules: RoutingRules) -> UpsertPatientRecord:
    command = command_for(MSH.format(trigger="A08") + pid, rules)
    assert isinstance(command, UpsertPatientRecord)
    return command


def test_a_full_v28_admission_maps_every_pid_field(rules: RoutingRules) -> None:
    [text], _ = corpus_messages("ms-fhir-converter/adt_a01_v28_full.hl7")
    command = command_for(text, rules)
    assert isinstance(command, UpsertPatientRecord)
    values = command.update.values
    assert command.key == RecordKey("GHH", "test1", "PATID1234")
    assert values.identifiers == (Identifier("PATID1234", "test1", "MR"),
                                  Identifier("123456789", "USSSA", "SS"))
    assert values.names == (PersonName("EVERYMAN", ("ADAM", "A"), "Dr.", "III", "usual"),
                            PersonName("Josh", ("stanley",), use="official"))
    assert values.mothers_maiden_name == "SMITH"
    assert (values.birth_date, values.sex) == ("1988-08-18", "male")
    assert values.addresses[0] == Address(("1000 Hospital Lane", "Ste. 123"), "Ann Arbor", "MI",
                                          "99999", "USA", "home")
    assert Telecom("phone", "1111", "mobile") in values.phones
    assert values.ssn == "PSSN123121234"
    assert (values.deceased, values.deceased_at) == (True, "2008-08-25T11:16:30+01:15")
    assert command.origin.control_id == "MSG00001" and command.origin.facility == "GHH"


def test_explicit_nulls_clear_and_absent_fields_keep(rules: RoutingRules) -> None:
    command = upsert_for(pid_with(f5='""', f6='""', f8='""', f11='""'), rules)
    present, values = command.update.present, command.update.values
    assert {"names", "mothers_maiden_name", "sex", "addresses"} <= present
    assert (values.names, values.sex, values.addresses) == ((), "", ())
    assert "birth_date" not in present and "phones" not in present


def test_null_components_and_the_australian_a08(rules: RoutingRules) -> None:
    [text], _ = corpus_messages("hapi-hl7v2/adt_a08_v23_null_quotes.hl7")
    text = text.replace("|HOMER|fake|", "|HOMER|GHH|")
    command = command_for(text, rules)
    assert isinstance(command, UpsertPatientRecord)
    values = command.update.values
    assert command.key == RecordKey("GHH", "MRN", "708010")
    assert values.addresses == (Address(("UNIT A/1 FAKE ST",), "BRISBANE", "", "4000", "", "home"),)
    assert values.phones == (Telecom("phone", "12345678", "home"),)
    assert (values.deceased, values.ssn) == (True, "4072469157")


def test_email_and_work_phone_come_from_pid_13_and_14(rules: RoutingRules) -> None:
    command = upsert_for(pid_with(f13="^NET^Internet^ann@example.org~^PRN^CP^^1^555^1234567",
                                  f14="^WPN^PH^^^555^7654321^12"), rules)
    values = command.update.values
    assert values.emails == (Telecom("email", "ann@example.org", "home"),)
    assert values.phones == (Telecom("phone", "+1 (555) 1234567", "mobile"),
                             Telecom("phone", "(555) 7654321 x12", "work"))


def test_identifiers_without_authority_take_the_facility_default(rules: RoutingRules) -> None:
    command = upsert_for("PID|1||A7^^^^MR~X9", rules)
    assert command.key == RecordKey("GHH", "GHH", "A7")
    assert Identifier("X9", "GHH", "") in command.update.values.identifiers


def test_old_versions_carry_the_id_in_pid_2(rules: RoutingRules) -> None:
    [text], _ = corpus_messages("nhapi/adt_a28_v25_minimal.hl7")
    header_fixed = text.split("\r", 1)
    msh = header_fixed[0].split("|")
    msh[3] = "GHH"
    command = command_for("|".join(msh) + "\r" + header_fixed[1], rules)
    assert isinstance(command, UpsertPatientRecord)
    assert command.key == RecordKey("GHH", "GHH", "12345")


@pytest.mark.parametrize(("pid", "location"), [
    (pid_with(f7="19991332"), "PID-7"),
    (pid_with(f7="1999-01-01"), "PID-7"),
    (pid_with(f29="2020XX"), "PID-29"),
    ("PID|1||^^^GHH^MR~123^^^^SS", "PID-3"),
    ("PID|1", "PID-3"),
])
def test_bad_values_are_refused_with_their_location(pid: str, location: str, rules: RoutingRules) -> None:
    with pytest.raises(InvalidMessage) as caught:
        upsert_for(pid, rules)
    assert caught.value.location == location


def test_a_message_without_pid_is_refused(rules: RoutingRules) -> None:
    with pytest.raises(InvalidMessage, match="no PID"):
        command_for(MSH.format(trigger="A08") + "EVN|A08", rules)


def test_every_pid_mrg_group_of_an_a40_is_a_merge(rules: RoutingRules) -> None:
    [text], _ = corpus_messages("lfh-hl7v2-fhir-converter/adt_a40_v26_two_patient_groups.hl7")
    text = text.replace("|REGADT|MCM|", "|REGADT|GHH|")
    command = command_for(text, rules)
    assert isinstance(command, MergePatientRecords)
    assert [(m.survivor.mrn, m.prior.mrn) for m in command.merges] == [("MR1", "MR2"), ("MR3", "MR4")]
    assert {m.prior.authority for m in command.merges} == {"XYZ"}


def test_a_group_without_mrg_is_refused(rules: RoutingRules) -> None:
    text = MSH.format(trigger="A40") + "PID|1||1^^^GHH^MR\rMRG|2^^^GHH^MR\rPID|2||3^^^GHH^MR"
    with pytest.raises(InvalidMessage, match="group 2 has no MRG"):
        command_for(text, rules)


def test_a47_moves_the_record_from_the_mrg_identifier(rules: RoutingRules) -> None:
    [text], _ = corpus_messages("ms-fhir-converter/adt_a47_v28_change_identifier.hl7")
    command = command_for(text, rules)
    assert isinstance(command, ChangePatientIdentifier)
    [change] = command.changes
    assert (change.old, change.new) == (RecordKey("GHH", "BCBS", "MR102"),
                                        RecordKey("GHH", "GOOD HEALTH HOSPITAL", "MR101"))


def test_the_trigger_comes_from_msh_9_not_evn_1(rules: RoutingRules) -> None:
    text = MSH.format(trigger="A08") + "EVN|A40\rPID|1||1^^^GHH^MR"
    assert isinstance(command_for(text, rules), UpsertPatientRecord)


def test_authority_aliases_make_an_oid_and_a_namespace_one_authority() -> None:
    from engine.rules import parse_rules
    from tests.conftest import TEST_RULES_YAML

    rules = parse_rules(TEST_RULES_YAML + """
authorities:
  - {code: GHHMRN, aliases: [GHH-NS, "2.16.840.1.113883.19.5", "urn:oid:2.16.840.1.113883.19.5"]}
""")
    by_oid = upsert_for("PID|1||7^^^&2.16.840.1.113883.19.5&ISO^MR", rules)
    by_namespace = upsert_for("PID|1||7^^^GHH-NS^MR", rules)
    assert by_oid.key == by_namespace.key == RecordKey("GHH", "GHHMRN", "7")


@pytest.mark.parametrize("field", [3, 5, 11, 13])
def test_a_field_repeated_more_than_a_thousand_times_is_refused_by_name(
        rules: RoutingRules, field: int) -> None:
    repeated = "~".join(f"{i}^^^GHH^MR" for i in range(1001))
    with pytest.raises(InvalidMessage) as caught:
        upsert_for(pid_with(**{f"f{field}": repeated}), rules)
    assert caught.value.location == f"PID-{field}"
    assert "repeats 1001 times; at most 1000" in caught.value.reason
    within = "~".join(f"{i}^^^GHH^MR" for i in range(1000))
    assert len(upsert_for(pid_with(f3=within), rules).update.values.identifiers) == 1000
