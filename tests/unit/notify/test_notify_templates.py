"""Templates per kind and locale: rendering, escaping, fallbacks, overrides, config check."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main
from engine.notifications import DeliveryFailed
from outbound.notify import KINDS, LETTER, NotificationRenderer, check_templates
from tests.unit.notify.notify_support import TOKEN, site_rules
from tests.unit.test_rules import VALID

MESSAGE_KINDS = [name for name in KINDS if name != LETTER.name]


@pytest.mark.parametrize("locale", ["en-US", "es-US"])
@pytest.mark.parametrize("kind", MESSAGE_KINDS)
def test_every_kind_renders_every_part_in_both_shipped_locales(kind: str, locale: str) -> None:
    renderer = NotificationRenderer(site_rules())
    email = renderer.email(kind, locale, KINDS[kind].sample)
    assert email.locale == locale and email.subject and "\n" not in email.subject
    assert "Good Health Portal" in email.text and email.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{locale}">' in email.html
    assert renderer.sms(kind, locale, KINDS[kind].sample)


def test_the_activation_token_mail_carries_token_link_passphrase_expiry_and_help() -> None:
    renderer = NotificationRenderer(site_rules())
    values = {"token": TOKEN, "expires_at": "2026-03-07T20:30:00+00:00", "passphrase": "maple river"}
    email = renderer.email("activation_token", "en-US", values)
    link = f"https://portal.example.org/activate?token={TOKEN}"
    for body in (email.text, email.html):
        assert TOKEN in body and link in body and "maple river" in body
        assert "March 7, 2026" in body and "3:30" in body and "EST" in body  # the site's zone
        assert "the help desk at (555) 010-0100" in body
    assert email.subject == "Activate your Good Health Portal account"


def test_without_a_passphrase_nothing_about_one_is_said() -> None:
    email = NotificationRenderer(site_rules()).email(
        "activation_token", "en-US", {"token": TOKEN, "expires_at": "2026-03-07T20:30:00+00:00"})
    assert "passphrase" not in email.text and "passphrase" not in email.html


def test_spanish_is_chosen_by_locale_with_localised_dates_and_help() -> None:
    email = NotificationRenderer(site_rules()).email(
        "activation_token", "es-US", {"token": TOKEN, "expires_at": "2026-03-07T20:30:00+00:00"})
    assert email.subject == "Active su cuenta de Good Health Portal"
    assert "7 de marzo de 2026" in email.text and "código de activación" in email.text
    assert "la mesa de ayuda al (555) 010-0100" in email.html


def test_an_unconfigured_locale_falls_back_to_the_site_default() -> None:
    rules = site_rules(default_locale="es-US")
    email = NotificationRenderer(rules).email("password_changed", "fr-CA",
                                              {"occurred_at": "2026-03-07T20:30:00+00:00"})
    assert email.locale == "es-US" and email.subject.startswith("Se cambió su contraseña")


def test_html_parts_escape_values_and_text_parts_keep_them() -> None:
    renderer = NotificationRenderer(site_rules(site_name="Smith & Sons <Health>"))
    email = renderer.email("registration_complete", "en-US", {"username": "<script>alert(1)</script>"})
    assert "<script>" not in email.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "Smith &amp; Sons &lt;Health&gt;" in email.html
    assert "<script>alert(1)</script>" in email.text and "Smith & Sons <Health>" in email.text


def test_a_missing_value_or_an_unknown_kind_fails_permanently() -> None:
    renderer = NotificationRenderer(site_rules())
    with pytest.raises(DeliveryFailed) as missing:
        renderer.email("activation_token", "en-US", {"token": TOKEN})
    assert missing.value.permanent
    assert missing.value.reason == "activation_token: the context lacks expires_at"
    with pytest.raises(DeliveryFailed) as unknown:
        renderer.email("birthday_card", "en-US", {})
    assert unknown.value.permanent and "unknown notification kind 'birthday_card'" in unknown.value.reason
    with pytest.raises(DeliveryFailed) as bad_time:
        renderer.email("deactivated", "en-US", {"occurred_at": "yesterday"})
    assert bad_time.value.permanent


def override_folder(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path / "templates"


def test_an_analysts_folder_overrides_one_file_and_keeps_the_shipped_layout(tmp_path: Path) -> None:
    folder = override_folder(tmp_path, {
        "en-US/deactivated.subject.txt": "{{ site_name }}: account closed",
        "en-US/deactivated.html": '{% extends "_layout.html" %}{% block body %}<p>Closed on '
                                  "{{ occurred }}.</p>{% endblock %}"})
    renderer = NotificationRenderer(site_rules(templates_folder=str(folder)))
    email = renderer.email("deactivated", "en-US", {"occurred_at": "2026-03-07T20:30:00+00:00"})
    assert email.subject == "Good Health Portal: account closed"
    assert "<p>Closed on March 7, 2026" in email.html and "Need help? Contact" in email.html
    assert "was deactivated on" in email.text  # the shipped text part is still used
    spanish = renderer.email("deactivated", "es-US", {"occurred_at": "2026-03-07T20:30:00+00:00"})
    assert spanish.subject.startswith("Su cuenta de")


def test_config_check_passes_the_shipped_templates() -> None:
    assert check_templates(site_rules()) == []


def test_config_check_names_each_template_a_configured_locale_lacks(tmp_path: Path) -> None:
    folder = override_folder(tmp_path, {"fr-CA/otp_code.subject.txt": "Code {{ site_name }}"})
    problems = check_templates(site_rules(locales=["en-US", "es-US", "fr-CA"], templates_folder=str(folder)))
    assert "fr-CA/activation_token.html: no such template" in problems
    assert "fr-CA/activation_letter.letter.html: no such template" in problems
    assert "fr-CA/otp_code.subject.txt: no such template" not in problems
    per_kind = sum(len(kind.parts) for kind in KINDS.values())
    assert len(problems) == per_kind - 1
    assert not any(p.startswith(("en-US", "es-US")) for p in problems)


def test_config_check_reports_a_template_that_does_not_render(tmp_path: Path) -> None:
    folder = override_folder(tmp_path, {
        "es-US/password_reset.txt": "Hola\n{{ reset_lnk }}\n",
        "en-US/otp_code.html": "{% if code %}<p>{{ code }}</p>",
        "en-US/registration_complete.sms.txt": "{{ site_name }} " + "word " * 120})
    problems = check_templates(site_rules(templates_folder=str(folder)))
    assert "es-US/password_reset.txt: line 2: 'reset_lnk' is undefined" in problems
    assert any(p.startswith("en-US/otp_code.html: line 1: Unexpected end of template") for p in problems)
    assert ("en-US/registration_complete.sms.txt: the sample needs 4 text messages "
            "(notifications.sms_max_parts is 3)") in problems
    assert len(problems) == 3


def test_config_check_of_a_missing_folder_or_an_unknown_locale(tmp_path: Path) -> None:
    assert check_templates(site_rules(templates_folder=str(tmp_path / "nope"))) == [
        f"notifications.templates_folder: {tmp_path / 'nope'} is not a folder"]
    problems = check_templates(site_rules(locales=["en-US", "xx-QQ"]))
    assert problems == ["notifications.locales: 'xx-QQ' is not a locale Babel knows"]


def test_portalbridge_config_check_fails_on_a_template_problem(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    override_folder(tmp_path, {"en-US/reactivated.subject.txt": "{{ site_nam }}"})
    routing = tmp_path / "routing.yaml"  # templates_folder is relative to the routing file
    routing.write_text(VALID + "notifications:\n  templates_folder: templates\n", encoding="utf-8")
    assert main(["config", "check", str(routing)]) == 1
    assert "error: en-US/reactivated.subject.txt: line 1: 'site_nam' is undefined" in capsys.readouterr().err
    routing.write_text(VALID + "notifications:\n  locales: [en-US]\n", encoding="utf-8")
    assert main(["config", "check", str(routing)]) == 0
    assert "37 notification templates in 1 locales" in capsys.readouterr().out


def test_times_are_worded_in_the_sites_zone_and_a_time_without_offset_is_utc() -> None:
    renderer = NotificationRenderer(site_rules(time_zone="America/Los_Angeles"))

    def worded(value: str, locale: str, short: bool = False) -> str:
        return " ".join(renderer.format_datetime(value, locale, short=short).split())  # CLDR spaces

    assert worded("2026-07-01T19:05:00+00:00", "en-US") == "July 1, 2026, 12:05 PM PDT"
    assert worded("2026-07-01T19:05:00", "en-US", short=True) == "Jul 1, 12:05 PM PDT"
    assert worded("2026-07-01T19:05:00Z", "es-US") == "1 de julio de 2026, 12:05 p.m. PDT"
