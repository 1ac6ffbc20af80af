"""Records written as Patients: valid FHIR, and read back to the same demographics."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from fhir.resources.patient import Patient as R5Patient
from fhir.resources.R4B.patient import Patient as R4BPatient

from inbound.fhir.render import Renderer, etag, http_date, instant
from inbound.fhir.translate import demographics
from mpi.model import Address, Demographics, Identifier, PersonName, RecordKey, SourceRecord, Telecom
from tests.unit.fhir.fhir_rules import fhir_rules

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
FULL = Demographics(
    identifiers=(Identifier("1001", "NGH", "MR"), Identifier("42", "2.16.840.1.113883.19.5", ""),
                 Identifier("X", "LOCAL", "PI")),
    names=(PersonName("Chalmers", ("Peter", "James"), "Dr.", "III", "official"),
           PersonName("Windsor", (), use="maiden")),
    birth_date="1974-12-25", sex="male",
    addresses=(Address(("534 Erewhon St",), "PleasantVille", "Vic", "3999", "AU", "home"),),
    phones=(Telecom("phone", "(03) 5555 6473", "work"),), emails=(Telecom("email", "p@example.org", "home"),),
    mothers_maiden_name="Organa", ssn="123-45-6789", deceased=True, deceased_at="2020-01-01T10:00:00Z",
    active=True)


def _record(demo: Demographics = FULL, **more: object) -> SourceRecord:
    return SourceRecord(id="rec-1", key=RecordKey("NORTH", "NGH", "1001"), patient_id="p1",
                        demographics=demo, created_at=WHEN, updated_at=WHEN, version=3, **more)  # type: ignore[arg-type]


def test_a_record_renders_as_a_valid_patient_in_r4_and_r5() -> None:
    resource = Renderer(fhir_rules()).patient(_record())
    R4BPatient.model_validate(resource)
    R5Patient.model_validate(resource)
    assert resource["meta"] == {"versionId": "3", "lastUpdated": "2026-01-02T03:04:05.678Z"}
    assert [i["system"] for i in resource["identifier"]] == [
        "http://north.example.org/mrn", "urn:oid:2.16.840.1.113883.19.5", "urn:portalbridge:authority:LOCAL",
        "http://hl7.org/fhir/sid/us-ssn"]
    assert resource["managingOrganization"] == {
        "identifier": {"system": "urn:portalbridge:facility", "value": "NORTH"}, "display": "North General"}


def test_read_back_gives_the_same_demographics() -> None:
    rules = fhir_rules()
    resource = Renderer(rules).patient(_record())
    facility = rules.facility("NORTH")
    assert facility is not None
    again, key = demographics(resource, facility, rules)
    ssn = Identifier("123-45-6789", "http://hl7.org/fhir/sid/us-ssn", "SS")
    # The SSN comes back as an identifier too (FHIR has no separate SSN element).
    assert again == replace(FULL, identifiers=(*FULL.identifiers, ssn))
    assert key == RecordKey("NORTH", "NGH", "1001")


def test_merged_and_surviving_records_carry_links() -> None:
    renderer = Renderer(fhir_rules())
    merged = renderer.patient(_record(merged_into="rec-9"))
    assert merged["active"] is False
    assert merged["link"] == [{"other": {"reference": "Patient/rec-9"}, "type": "replaced-by"}]
    survivor = renderer.patient(_record(), replaces=("rec-0",))
    assert survivor["link"] == [{"other": {"reference": "Patient/rec-0"}, "type": "replaces"}]


@pytest.mark.parametrize(("stored", "written"), [
    ("2008-08-25T15:31:30+05:30", "2008-08-25T15:31:30+05:30"),
    ("2008-08-25T15:31", "2008-08-25"),  # HL7 without seconds or zone: the date is what is certain
    ("2008-08", "2008-08"),
])
def test_deceased_times_are_valid_fhir(stored: str, written: str) -> None:
    resource = Renderer(fhir_rules()).patient(_record(Demographics(deceased_at=stored)))
    assert resource["deceasedDateTime"] == written
    R4BPatient.model_validate(resource)


def test_header_formats() -> None:
    assert (etag(7), instant(WHEN), http_date(WHEN)) == (
        'W/"7"', "2026-01-02T03:04:05.678Z", "Fri, 02 Jan 2026 03:04:05 GMT")
