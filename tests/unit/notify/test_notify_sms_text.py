"""Text-message bodies: the GSM alphabet and the 160-character parts."""

from __future__ import annotations

from outbound.notify import NotificationRenderer, septets, split_parts, to_gsm
from tests.unit.notify.notify_support import TOKEN, site_rules


def test_spanish_keeps_the_letters_gsm_has_and_drops_the_accents_it_lacks() -> None:
    assert to_gsm("Su código de activación: ¿Ñandú? ¡Sí! Válido hasta el 7 de marzo, 3:30\u202fp.m.") \
        == "Su codigo de activacion: ¿Ñandu? ¡Si! Valido hasta el 7 de marzo, 3:30 p.m."
    assert to_gsm("“Quoted” — fine…") == '"Quoted" - fine...'
    assert to_gsm("中文") == "??"
    assert to_gsm("  one   two \n\n  three  ") == "one two\nthree"


def test_extension_characters_count_twice() -> None:
    assert septets("abc") == 3 and septets("a{b}€") == 8


def test_a_body_that_fits_is_one_message_without_a_number() -> None:
    assert split_parts("x" * 160) == ["x" * 160]
    assert split_parts("{" * 80) == ["{" * 80]


def test_the_activation_token_text_is_two_numbered_parts_token_first_link_whole() -> None:
    renderer = NotificationRenderer(site_rules())
    values = {"token": TOKEN, "expires_at": "2026-03-07T20:30:00+00:00", "passphrase": "maple river"}
    for locale in ("en-US", "es-US"):
        parts = split_parts(to_gsm(renderer.sms("activation_token", locale, values)))
        assert len(parts) == 2, parts
        assert all(septets(part) <= 160 for part in parts)
        assert parts[0].startswith("(1/2) Good Health Portal: ") and TOKEN in parts[0]
        assert "maple river" in parts[0]
        assert parts[1] == f"(2/2) {parts[1][6:]}" and parts[1].endswith(
            f"https://portal.example.org/activate?token={TOKEN}")


def test_short_kinds_fit_in_one_message() -> None:
    renderer = NotificationRenderer(site_rules())
    for kind, values in (("otp_code", {"code": "493817"}),
                         ("deactivated", {"occurred_at": "2026-03-07T20:30:00+00:00"})):
        for locale in ("en-US", "es-US"):
            parts = split_parts(to_gsm(renderer.sms(kind, locale, values)))
            assert len(parts) == 1 and septets(parts[0]) <= 160, parts
    otp = split_parts(to_gsm(renderer.sms("otp_code", "en-US", {"code": "493817"})))[0]
    assert otp.startswith("493817 is your Good Health Portal sign-in code. Valid 6 minutes.")


def test_long_lines_split_between_words_and_an_overlong_word_is_cut() -> None:
    words = " ".join(f"word{n:03d}" for n in range(60))  # 479 characters on one line
    parts = split_parts(words)
    assert all(septets(p) <= 160 for p in parts) and len(parts) == 4
    assert " ".join(p.split(" ", 1)[1] for p in parts) == words  # nothing lost, no word broken
    link = "https://example.org/" + "a" * 300
    cut = split_parts(link)
    assert "".join(p.split(" ", 1)[1] for p in cut) == link and all(septets(p) <= 160 for p in cut)


def test_ten_parts_or_more_number_with_two_digits_and_still_fit() -> None:
    parts = split_parts("\n".join("y" * 150 for _ in range(12)))
    assert len(parts) == 12 and parts[9].startswith("(10/12) ") and parts[0].startswith("(1/12) ")
    assert all(septets(p) <= 160 for p in parts)


def test_the_readme_shows_the_text_messages_the_shipped_routing_file_sends() -> None:
    from engine.rules import load_rules
    from tests.conftest import ROOT

    renderer = NotificationRenderer(load_rules(ROOT / "routing.yaml").notifications)
    body = renderer.sms("activation_token", "en-US",
                        {"token": TOKEN, "expires_at": "2026-03-07T20:30:00+00:00"})
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for part in split_parts(to_gsm(body)):
        assert f"\n{part}\n" in readme
