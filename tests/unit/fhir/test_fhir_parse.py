"""Choosing the FHIR version, validating with fhir.resources, and our extra checks."""

from __future__ import annotations

from typing import Any

import pytest

from inbound.fhir.errors import FhirError
from inbound.fhir.parse import choose_version, validate_bundle, validate_patient, version_of_media_type


def _patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **elements}


def _refusal(data: dict[str, Any], version: str = "R4", path: str = "Patient") -> FhirError:
    with pytest.raises(FhirError) as caught:
        validate_patient(data, version, path)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize(("parameter", "version"), [
    (None, None), ("4.0", "R4"), ("4.0.1", "R4"), ("4.3", "R4B"), ('"5.0"', "R5"), ("5.0.0", "R5")])
def test_media_type_versions(parameter: str | None, version: str | None) -> None:
    assert version_of_media_type(parameter) == version


def test_an_unsupported_media_type_version_is_415() -> None:
    with pytest.raises(FhirError) as caught:
        version_of_media_type("3.0")
    assert (caught.value.status, caught.value.location) == (415, "http.Content-Type")


@pytest.mark.parametrize(("profiles", "expected"), [
    ([], "R4"),
    (["http://hl7.org/fhir/StructureDefinition/Patient|5.0.0"], "R5"),
    (["http://hl7.org/fhir/StructureDefinition/Patient|4.3.0"], "R4B"),
    (["http://example.org/fhir/R5/StructureDefinition/my-patient"], "R5"),
    (["http://example.org/StructureDefinition/local", 7], "R4"),
])
def test_profile_hints(profiles: list[Any], expected: str) -> None:
    assert choose_version(None, _patient(meta={"profile": profiles}), "R4") == expected


def test_the_media_type_wins_over_the_profile() -> None:
    hinted = _patient(meta={"profile": ["http://hl7.org/fhir/StructureDefinition/Patient|5.0.0"]})
    assert choose_version("R4B", hinted, "R4") == "R4B"


def test_validation_errors_become_issues_with_expressions() -> None:
    error = _refusal(_patient(birthDate="1974-13-01", name=[{"given": [""]}], foo=1))
    assert error.status == 400
    found = {(i.expression, i.code) for i in error.issues}
    assert found == {("Patient.birthDate", "value"), ("Patient.name[0].given[0]", "value"),
                     ("Patient.foo", "structure")}


def test_expressions_follow_the_entry_in_a_bundle() -> None:
    error = _refusal(_patient(gender="M"), path="Bundle.entry[3].resource")
    assert error.location == "Bundle.entry[3].resource.gender"


@pytest.mark.parametrize(("element", "expression"), [
    ({"gender": "M"}, "Patient.gender"),
    ({"name": [{"use": "legal"}]}, "Patient.name[0].use"),
    ({"telecom": [{"system": "phone", "value": "1", "use": "cell"}]}, "Patient.telecom[0].use"),
    ({"address": [{"use": "house"}]}, "Patient.address[0].use"),
    ({"identifier": [{"use": "primary", "value": "1"}]}, "Patient.identifier[0].use"),
    ({"link": [{"type": "merged", "other": {"reference": "Patient/1"}}]}, "Patient.link[0].type"),
])
def test_codes_of_mapped_elements_are_checked(element: dict[str, Any], expression: str) -> None:
    error = _refusal(_patient(**element))
    assert (error.location, error.issues[0].code) == (expression, "code-invalid")


def test_a_contact_point_value_needs_a_system() -> None:
    error = _refusal(_patient(telecom=[{"value": "555-1234", "use": "home"}]))
    assert (error.location, error.issues[0].code) == ("Patient.telecom[0].system", "invariant")


def test_null_placeholders() -> None:
    ok = _patient(name=[{"given": [None, "James"], "_given": [{"id": "g0"}, None]}])
    assert validate_patient(ok, "R4").data is ok
    error = _refusal(_patient(name=[{"given": ["Peter", None], "_given": [{"id": "g0"}]}]))
    assert error.location == "Patient.name[0].given[1]"
    error = _refusal(_patient(address=[{"line": [None]}]))
    assert error.location == "Patient.address[0].line[0]"
    error = _refusal(_patient(gender=None))
    assert (error.location, error.issues[0].code) == ("Patient.gender", "structure")


def test_modifiers_are_422() -> None:
    error = _refusal(_patient(modifierExtension=[{"url": "http://example.org/x", "valueBoolean": True}]))
    assert (error.status, error.location) == (422, "Patient.modifierExtension[0]")
    assert error.code == "not-supported"
    error = _refusal(_patient(implicitRules="http://example.org/rules"))
    assert (error.status, error.location) == (422, "Patient.implicitRules")


def test_resource_types() -> None:
    assert _refusal({"gender": "male"}).location == "resourceType"
    assert "Observation" in _refusal({"resourceType": "Observation"}).reason
    assert _refusal({"resourceType": "Observation"}, path="Bundle.entry[0].resource").location == \
        "Bundle.entry[0].resourceType"


def test_bundle_envelopes_are_validated_without_their_resources() -> None:
    bundle = {"resourceType": "Bundle", "type": "batch",
              "entry": [{"resource": {"resourceType": "Patient", "gender": "M"},
                         "request": {"method": "POST", "url": "Patient"}}]}
    assert validate_bundle(bundle, "R4").data["entry"][0]["resource"]["gender"] == "M"
    with pytest.raises(FhirError) as caught:
        validate_bundle({"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"url": 1}}]}, "R5")
    assert caught.value.location.startswith("Bundle.entry[0].request")


@pytest.mark.parametrize("version", ["R4", "R4B", "R5"])
@pytest.mark.parametrize("kind", ["Organnzation", "Organizat||ion", "x" * 300])
def test_a_contained_resource_of_no_fhir_type_is_a_400_naming_it(version: str, kind: str) -> None:
    # Found by fuzzing: fhir_core looked the type up and let a KeyError out (a 500).
    data = {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "a"},
                                                     {"resourceType": kind, "id": "b"}]}
    with pytest.raises(FhirError) as caught:
        validate_patient(data, version)  # type: ignore[arg-type]
    assert caught.value.status == 400
    assert caught.value.location == "Patient.contained[1].resourceType"
    assert "is not a FHIR resource type" in caught.value.reason


def test_a_contained_resource_of_a_real_type_is_read() -> None:
    data = {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "o"}]}
    assert validate_patient(data, "R4").data is data


@pytest.mark.parametrize("value", [1e308, 5, True])
def test_a_url_that_is_not_text_is_a_400(value: object) -> None:
    # Found by fuzzing: fhir_core called .startswith on a number in Attachment.url (a 500).
    with pytest.raises(FhirError) as caught:
        validate_patient({"resourceType": "Patient", "photo": [{"url": value}]}, "R4")
    assert caught.value.status == 400 and "wrong JSON type" in caught.value.reason
