"""Enrollment's contact details against the communication preference and the carriers."""

from __future__ import annotations

from datetime import date

import pytest

from engine.carriers import SHIPPED_CARRIERS
from engine.channels import channels_for, normalise_mobile, validate_channels
from engine.errors import ConfigurationError
from engine.rules import parse_rules
from tests.conftest import TEST_RULES_YAML
from tests.unit.notify.notify_support import site_rules

TODAY = date(2026, 11, 29)


def check(communication: str, email: str | None = None, mobile: str | None = None,
          carrier: str | None = None, today: date = TODAY) -> list[str]:
    return validate_channels(communication, email, mobile, carrier, carriers=SHIPPED_CARRIERS,
                             today=today)


def test_each_preference_asks_for_its_channels() -> None:
    assert channels_for("email") == ("email",)
    assert channels_for("text") == ("sms",)
    assert channels_for("email_and_text") == ("email", "sms")
    assert channels_for("fax") == ()


def test_complete_details_have_no_problems() -> None:
    assert check("email", email="maria@example.org") == []
    assert check("text", mobile="(570) 212-3456", carrier="googlefi") == []
    assert check("email_and_text", email="maria@example.org", mobile="+1 570 212 3456",
                 carrier="verizon") == []


def test_text_only_without_a_mobile_number_is_an_error_that_names_the_field() -> None:
    assert check("text", email="maria@example.org", carrier="verizon") == [
        "mobile: required when communication is 'text'"]


def test_text_needs_a_carrier_and_a_known_one() -> None:
    missing = check("text", mobile="5702123456")
    assert len(missing) == 1 and missing[0].startswith("carrier: required when communication is 'text'")
    assert "verizon" in missing[0]
    unknown = check("email_and_text", email="m@example.org", mobile="5702123456", carrier="acme")
    assert unknown == [unknown[0]] and unknown[0].startswith("carrier: unknown carrier 'acme' (one of att,")


def test_a_retired_gateway_is_refused_from_the_day_it_closed() -> None:
    assert check("text", mobile="5702123456", carrier="att", today=date(2025, 6, 16)) == []
    refused = check("text", mobile="5702123456", carrier="att", today=date(2025, 6, 17))
    assert refused == ["carrier: AT&T retired its e-mail-to-SMS gateway (txt.att.net) on 2025-06-17; "
                       "set notifications.carriers.att.gateway in routing.yaml to a gateway that delivers"]
    # Verizon's announced sunset: still open the day before, closed on the day.
    assert check("text", mobile="5702123456", carrier="verizon", today=date(2027, 3, 30)) == []
    assert check("text", mobile="5702123456", carrier="verizon", today=date(2027, 3, 31)) != []


def test_a_carrier_is_only_checked_when_text_is_wanted() -> None:
    assert check("email", email="m@example.org", mobile="5702123456", carrier="att") == []


def test_email_preference_needs_a_valid_address_and_values_are_never_echoed() -> None:
    assert check("email") == ["email: required when communication is 'email'"]
    problems = check("email_and_text", email="maria at example", mobile="12345", carrier="verizon")
    assert problems == ["email: not a valid e-mail address", "mobile: not a 10-digit US mobile number"]
    assert check("email", email="maria@example.org\r\nBcc: x@evil.example") == [
        "email: not a valid e-mail address"]


def test_unknown_preference() -> None:
    assert check("carrier pigeon") == ["communication: must be one of email, text, email_and_text"]


@pytest.mark.parametrize(("raw", "digits"), [
    ("570-212-3456", "5702123456"), ("(570) 212 3456", "5702123456"), ("+15702123456", "5702123456"),
    ("1 570 212 3456", "5702123456"), ("570.212.3456", "5702123456"),
    ("070-212-3456", None), ("570-112-3456", None), ("212345", None), ("+44 20 7946 0958", None)])
def test_mobile_numbers_are_normalised_to_ten_nanp_digits(raw: str, digits: str | None) -> None:
    assert normalise_mobile(raw) == digits


def test_routing_yaml_overrides_and_extends_the_carrier_table() -> None:
    rules = site_rules(carriers={"att": {"gateway": "att.sms-provider.example"},
                                 "regional": {"name": "Regional Wireless", "gateway": "txt.regional.example"},
                                 "verizon": {"name": "Verizon Wireless"}})
    table = rules.carrier_table
    assert table["att"].gateway == "att.sms-provider.example" and table["att"].retired_on is None
    assert table["att"].name == "AT&T"
    assert table["verizon"].name == "Verizon Wireless" and table["verizon"].gateway == "vtext.com"
    assert table["verizon"].retired_on == date(2027, 3, 31)
    assert rules.validate_channels("text", None, "5702123456", "att", today=TODAY) == []
    assert rules.validate_channels("text", None, "5702123456", "regional", today=TODAY) == []
    assert site_rules().validate_channels("text", None, "5702123456", "regional", today=TODAY) != []


def test_the_shipped_table_has_the_major_carriers_with_lower_case_keys() -> None:
    for key in ("verizon", "att", "tmobile", "uscellular", "cricket", "boost", "metropcs", "googlefi",
                "consumer", "sprint"):
        assert key in SHIPPED_CARRIERS
    assert all(key == key.lower() and carrier.key == key for key, carrier in SHIPPED_CARRIERS.items())


def test_notification_section_errors_name_their_key_paths() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_rules(TEST_RULES_YAML + """
notifications:
  default_locale: fr-CA
  colour: blue
  time_zone: Mars/Olympus
  retry: {first: soon}
  carriers:
    Bad-Key: {name: X, gateway: x.example}
    newco: {name: New Co}
    verizon: {gateway: "not a domain"}
""")
    problems = caught.value.problems
    assert "notifications.colour: unknown key" in problems
    assert any(p.startswith("notifications.time_zone: unknown time zone 'Mars/Olympus'") for p in problems)
    assert "notifications.retry.first: 'soon' is not a duration like 30s, 5m, 72h or 7d" in problems
    assert any(p.startswith("notifications.carriers.verizon.gateway:") for p in problems)


def test_cross_checks_of_the_notification_section() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_rules(TEST_RULES_YAML + """
notifications:
  default_locale: fr-CA
  carriers:
    Bad-Key: {name: X, gateway: x.example}
    newco: {name: New Co}
""")
    assert set(caught.value.problems) == {
        "notifications.default_locale: 'fr-CA' is not one of notifications.locales",
        "notifications.carriers.Bad-Key: keys are lower-case letters, digits and '_'",
        "notifications.carriers.newco: a new carrier needs 'name' and 'gateway'"}


def test_durations_and_back_off() -> None:
    rules = site_rules(retry={"first": "30s", "max": "5m"})
    delays = [rules.retry.delay(n).total_seconds() for n in range(1, 7)]
    assert delays == [30, 60, 120, 240, 300, 300]
    assert site_rules(retry={"first": "2h", "max": "7d"}).retry.max.days == 7
