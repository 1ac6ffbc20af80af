"""Bytes to JSON: BOM, encodings, duplicate keys and non-JSON constants."""

from __future__ import annotations

import pytest

from inbound.fhir.errors import FhirError
from inbound.fhir.jsonbody import read_json


def _refusal(raw: bytes) -> FhirError:
    with pytest.raises(FhirError) as caught:
        read_json(raw, "Patient")
    assert caught.value.status == 400
    return caught.value


def test_a_utf8_bom_is_dropped() -> None:
    assert read_json(b'\xef\xbb\xbf{"resourceType": "Patient"}', "Patient") == {"resourceType": "Patient"}


def test_utf16_and_non_utf8_bytes_are_refused() -> None:
    assert "UTF-16" in _refusal('{"a": 1}'.encode("utf-16")).reason
    assert "offset 21" in _refusal(b'{"resourceType": "Pat\xe9ient"}').reason


@pytest.mark.parametrize(("raw", "where"), [
    (b'{"a": 1, "a": 2}', "Patient.a"),
    (b'{"name": [{"given": ["x"]}, {"family": "A", "family": "B"}]}', "Patient.name[1].family"),
    (b'{"x": {"y": {"z": 1, "z": 1}}}', "Patient.x.y.z"),
])
def test_duplicate_keys_are_refused_with_their_path(raw: bytes, where: str) -> None:
    error = _refusal(raw)
    assert error.location == where
    assert error.issues[0].code == "structure"


def test_every_duplicate_key_is_one_issue_outer_objects_first() -> None:
    raw = (b'{"gender": "male", "name": [{"family": "A", "family": "B", "given": ["x"]}],'
           b' "gender": "female", "birthDate": "1970", "birthDate": "1971", "gender": "other",'
           b' "address": [{"city": "X", "city": "Y"}]}')
    error = _refusal(raw)
    found = [(i.expression, i.diagnostics) for i in error.issues]
    assert [where for where, _ in found] == ["Patient.gender", "Patient.birthDate",
                                             "Patient.name[0].family", "Patient.address[0].city"]
    assert "duplicate JSON key 'gender' (3 times)" in found[0][1]
    assert all(i.code == "structure" for i in error.issues)


def test_a_body_of_duplicates_is_answered_with_a_bounded_list() -> None:
    raw = b"{" + b", ".join(b'"k%d": 1, "k%d": 2' % (n, n) for n in range(150)) + b"}"
    issues = _refusal(raw).issues
    assert len(issues) == 101 and issues[-1].diagnostics == "50 more duplicate keys are not listed"


@pytest.mark.parametrize("raw", [b"", b"{", b"[1]", b'"text"', b'{"a": NaN}', b'{"a": -Infinity}'])
def test_what_is_not_a_json_object_is_refused(raw: bytes) -> None:
    error = _refusal(raw)
    assert error.location == "Patient"


@pytest.mark.parametrize(("raw", "may_hold_null"), [
    (b'{"a": [1, 2]}', False), (b'{"a": "null"}', False), (b'{"a": [null, 1]}', True),
    (b'{"a": [1,null]}', True), (b'{"a": null}', True), (b'{"a": {"b": null }}', True)])
def test_the_body_says_whether_it_may_hold_nulls(raw: bytes, may_hold_null: bool) -> None:
    assert read_json(raw, "Patient").may_hold_null is may_hold_null


def test_syntax_errors_name_line_and_column() -> None:
    assert "line 2, column 5" in _refusal(b'{"a": 1,\n    }').reason


@pytest.mark.parametrize("depth", [64, 500, 1000, 5000, 200_000])
@pytest.mark.parametrize(("opener", "closer"), [("[", "]"), ('{"a":', "}")])
def test_nesting_of_any_depth_past_the_limit_is_a_400_not_a_server_error(
        depth: int, opener: str, closer: str) -> None:
    raw = ('{"resourceType": "Patient", "x": ' + opener * depth + "0" + closer * depth + "}").encode()
    error = _refusal(raw)
    assert "deeper than 64 levels" in error.reason and error.location == "Patient"


def test_nesting_within_the_limit_is_read() -> None:
    inner = "[" * 62 + "0" + "]" * 62  # 63 levels under the resource: 64 in all
    data = read_json(('{"resourceType": "Patient", "x": ' + inner + "}").encode(), "Patient")
    assert data["resourceType"] == "Patient"


def test_a_number_too_long_to_read_is_a_400() -> None:
    assert "not valid JSON" in _refusal(b'{"a": ' + b"9" * 100_000 + b"}").reason


def test_an_array_too_long_is_413_before_validation() -> None:
    with pytest.raises(FhirError) as caught:
        read_json(('{"resourceType": "Patient", "name": [' + ", ".join(['{"family": "A"}'] * 1001)
                   + "]}").encode(), "Patient")
    assert caught.value.status == 413 and caught.value.code == "too-costly"
    assert "1001 items; at most 1000" in caught.value.reason
    ok = '{"resourceType": "Patient", "name": [' + ", ".join(['{"family": "A"}'] * 1000) + "]}"
    assert len(read_json(ok.encode(), "Patient")["name"]) == 1000


def test_too_many_objects_in_all_is_413() -> None:
    extensions = ", ".join(['{"url": "x"}'] * 900)
    body = ('{"resourceType": "Patient", "extension": ['
            + ", ".join([f'{{"url": "y", "extension": [{extensions}]}}'] * 12) + "]}")
    with pytest.raises(FhirError) as caught:
        read_json(body.encode(), "Patient")
    assert caught.value.status == 413 and "at most 10000 are accepted" in caught.value.reason
