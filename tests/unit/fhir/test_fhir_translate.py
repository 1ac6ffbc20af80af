"""A FHIR Patient to the canonical command: identifiers, names, telecom, facility, links."""

from __future__ import annotations

from typing import Any

import pytest

from engine.rules import RoutingRules
from inbound.fhir.errors import FhirError
from inbound.fhir.facility import sending_facility
from inbound.fhir.translate import WriteRequest, conditional_identifiers, demographics, patient_command
from mpi.model import Address, Identifier, PersonName, RecordKey, Telecom
from tests.unit.fhir.fhir_rules import fhir_rules

V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _mr(value: str, system: str = "http://north.example.org/mrn", **more: Any) -> dict[str, Any]:
    return {"type": {"coding": [{"system": V2, "code": "MR"}]}, "system": system, "value": value, **more}


def _patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [_mr("1001")],
            "managingOrganization": {"display": "North General"}, **elements}


def _command(data: dict[str, Any], rules: RoutingRules | None = None, **request: Any) -> Any:
    rules = rules or fhir_rules(clients=False)
    command, _ = patient_command(data, WriteRequest(rules=rules, client=None, control_id="req-1",
                                                    interaction="create", **request))
    return command


def test_identifiers_map_through_the_authority_table() -> None:
    data = _patient(identifier=[
        {"system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": " 77 ",
         "type": {"coding": [{"system": "http://hl7.org/fhir/v2/0203", "code": "mr"}]}},
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "123-45-6789"},
        {"value": "L-5", "type": {"coding": [{"code": "DL"}]}},  # no system: the facility's authority
        {"system": "urn:portalbridge:authority:ECC", "value": "9"},  # how we write unknown systems back
        {"system": "urn:oid:9.9", "value": "no-type"},
        {"system": "urn:oid:9.9"},  # no value: skipped
        {"system": "urn:oid:9.9", "value": "no-type"},  # a repeat: stored once
    ])
    command = _command(data)
    assert command.demographics.identifiers == (
        Identifier("77", "NGH", "MR"), Identifier("123-45-6789", "http://hl7.org/fhir/sid/us-ssn", "SS"),
        Identifier("L-5", "NGH", ""), Identifier("9", "ECC", ""), Identifier("no-type", "9.9", ""))
    assert command.key == RecordKey("NORTH", "NGH", "77")
    assert command.demographics.ssn == "123-45-6789"
    assert command.origin.sender == "fhir:NORTH" and command.origin.control_id == "req-1"
    assert command.origin.message_type == "Patient.create" and command.origin.channel == "fhir"


def test_the_key_prefers_mr_and_skips_old_and_ssn_identifiers() -> None:
    data = _patient(identifier=[{"system": "urn:oid:1.1", "value": "other"}, _mr("OLD", use="old"),
                                _mr("NEW")])
    assert _command(data).key == RecordKey("NORTH", "NGH", "NEW")
    only_ssn = _patient(identifier=[{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "1"}])
    with pytest.raises(FhirError) as caught:
        _command(only_ssn)
    assert (caught.value.status, caught.value.location) == (422, "Patient.identifier")
    with pytest.raises(FhirError):
        _command(_patient(identifier=[]))


def test_the_demographics() -> None:
    data = _patient(
        name=[{"use": "official", "family": " Chalmers ", "given": ["Peter", None, "James"],
               "prefix": ["Dr.", "Prof."], "suffix": ["III"]},
              {"text": "only text"}, {"use": "usual", "given": ["Jim"]}],
        telecom=[{"system": "phone", "value": "555-1", "use": "mobile"}, {"use": "home"},
                 {"system": "email", "value": "p@example.org", "use": "work"},
                 {"system": "url", "value": "http://example.org"},
                 {"system": "fax", "value": "555-2"}],
        gender="male", birthDate="1974-12",
        address=[{"use": "home", "line": ["534 Erewhon St", "Unit 2"], "city": "PleasantVille",
                  "state": "Vic", "postalCode": "3999", "country": "AU", "district": "Rainbow"},
                 {"district": "only a district"}],
        extension=[{"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                    "valueString": "Windsor"}],
        deceasedDateTime="2020-02-03T10:00:00+01:00", active=False)
    found, _ = demographics(data, fhir_rules().facility("NORTH"), fhir_rules())  # type: ignore[arg-type]
    assert found.names == (PersonName("Chalmers", ("Peter", "James"), "Dr. Prof.", "III", "official"),
                           PersonName("", ("Jim",), use="usual"))
    assert found.phones == (Telecom("phone", "555-1", "mobile"), Telecom("fax", "555-2"))
    assert found.emails == (Telecom("email", "p@example.org", "work"),)
    assert found.addresses == (
        Address(("534 Erewhon St", "Unit 2"), "PleasantVille", "Vic", "3999", "AU", "home"),)
    assert (found.birth_date, found.sex, found.mothers_maiden_name) == ("1974-12", "male", "Windsor")
    assert (found.deceased, found.deceased_at, found.active) == (True, "2020-02-03T10:00:00+01:00", False)
    alive, _ = demographics(_patient(deceasedBoolean=False), fhir_rules().facility("NORTH"), fhir_rules())  # type: ignore[arg-type]
    assert (alive.deceased, alive.deceased_at, alive.active) == (False, "", None)


@pytest.mark.parametrize(("organization", "facility"), [
    ({"reference": "Organization/EAST"}, "EAST"),
    ({"reference": "https://fhir.example.org/Organization/east"}, "EAST"),
    ({"identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.3.9"}}, "EAST"),
    ({"identifier": {"system": "urn:portalbridge:facility", "value": "NORTH"}}, "NORTH"),
    ({"display": "north general"}, "NORTH"),
])
def test_managing_organization_names_the_facility(organization: dict[str, Any], facility: str) -> None:
    rules = fhir_rules(clients=False)
    found, why = sending_facility(_patient(managingOrganization=organization), rules, None)
    assert found.code == facility and "managingOrganization" in why


def test_the_assigner_is_used_when_there_is_no_managing_organization() -> None:
    data = {"resourceType": "Patient", "identifier": [_mr("1", assigner={"display": "Elsewhere"}),
                                                     _mr("2", assigner={"reference": "Organization/EAST"})]}
    found, why = sending_facility(data, fhir_rules(clients=False), None)
    assert found.code == "EAST" and "identifier[1].assigner" in why


def test_a_client_writes_for_its_facility() -> None:
    rules = fhir_rules()
    client = rules.fhir.clients[0]
    own, _ = sending_facility(_patient(managingOrganization={"display": "Unknown Org"}), rules, client)
    assert own.code == "EAST"
    # The hospital's MRN with the hospital as assigner is normal in a clinic's resource.
    assigned = _patient(identifier=[_mr("1", assigner={"display": "North General"})])
    del assigned["managingOrganization"]
    assert sending_facility(assigned, rules, client)[0].code == "EAST"
    with pytest.raises(FhirError) as caught:
        sending_facility(_patient(), rules, client)  # managingOrganization: North General
    assert (caught.value.status, caught.value.code) == (403, "forbidden")


def test_no_known_facility_is_422_listing_what_was_tried() -> None:
    with pytest.raises(FhirError) as caught:
        sending_facility(_patient(managingOrganization={"display": "Acme"}), fhir_rules(clients=False), None)
    assert caught.value.status == 422 and "'Acme'" in caught.value.reason


def test_links() -> None:
    links = [{"other": {"reference": "Patient/abc"}, "type": "replaced-by"},
             {"other": {"reference": "http://x/fhir/Patient/def/_history/2"}, "type": "replaces"},
             {"other": {"reference": "Patient/ghi"}, "type": "seealso"}]
    command = _command(_patient(link=links))
    assert [(link.other_record_id, link.kind) for link in command.links] == [
        ("abc", "replaced-by"), ("def", "replaces")]
    with pytest.raises(FhirError) as caught:
        _command(_patient(link=[{"other": {"reference": "RelatedPerson/1"}, "type": "replaces"}]))
    assert caught.value.location == "Patient.link[0].other"


def test_conditional_identifiers() -> None:
    rules = fhir_rules()
    both = conditional_identifiers("identifier=http://north.example.org/mrn|7&identifier=urn:oid:9.9|8",
                                   rules, "http.If-None-Exist")
    assert both == (Identifier("7", "NGH"), Identifier("8", "9.9"))
    assert conditional_identifiers("identifier=http%3A%2F%2Fnorth.example.org%2Fmrn%7C7", rules, "x") == (
        Identifier("7", "NGH"),)
    for bad in ("", "identifier=7", "family=x", "identifier=|7", "identifier=a|"):
        with pytest.raises(FhirError):
            conditional_identifiers(bad, rules, "http.If-None-Exist")
