"""Bearer tokens against routing.yaml's hashed client tokens."""

from __future__ import annotations

import pytest

from inbound.fhir.auth import authenticate
from inbound.fhir.errors import FhirError
from tests.unit.fhir.fhir_rules import CLINIC_TOKEN, fhir_rules


def test_without_clients_every_request_is_refused_with_how_to_make_one() -> None:
    closed = fhir_rules(clients=False, anonymous=False).fhir
    for header in (None, "", "Bearer anything"):
        with pytest.raises(FhirError) as caught:
            authenticate(closed, header)
        assert caught.value.status == 401
        assert "portalbridge fhir token NAME --facility CODE" in caught.value.reason
        assert "fhir.clients" in caught.value.reason


def test_allow_anonymous_lets_requests_without_a_token_in_but_checks_any_token_sent() -> None:
    assert authenticate(fhir_rules(clients=False).fhir, None) is None
    assert authenticate(fhir_rules(anonymous=True).fhir, None) is None
    client = authenticate(fhir_rules(anonymous=True).fhir, f"Bearer {CLINIC_TOKEN}")
    assert client is not None and client.facility == "EAST"
    for rules in (fhir_rules(clients=False).fhir, fhir_rules(anonymous=True).fhir):
        with pytest.raises(FhirError) as caught:
            authenticate(rules, "Bearer wrong")
        assert caught.value.status == 401


def test_a_known_token_is_its_client() -> None:
    client = authenticate(fhir_rules().fhir, f"Bearer {CLINIC_TOKEN}")
    assert client is not None and (client.name, client.facility) == ("east-emr", "EAST")
    assert authenticate(fhir_rules().fhir, f"bearer   {CLINIC_TOKEN} ") is not None


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer wrong", f"Basic {CLINIC_TOKEN}",
                                    f"Bearer {CLINIC_TOKEN}x"])
def test_anything_else_is_401_with_a_challenge(header: str | None) -> None:
    with pytest.raises(FhirError) as caught:
        authenticate(fhir_rules().fhir, header)
    error = caught.value
    assert (error.status, error.location, error.code) == (401, "http.Authorization", "login")
    assert error.headers["WWW-Authenticate"].startswith("Bearer")
    assert CLINIC_TOKEN not in error.reason
