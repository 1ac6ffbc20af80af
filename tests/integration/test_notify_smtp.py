"""Notifications through a real SMTP server (aiosmtpd on loopback) and into a mail folder."""

from __future__ import annotations

import email
import email.policy
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller

from engine.notifications import DeliveryFailed, NotificationSender
from outbound.notify import build_sender
from tests.smtp_server import SmtpServer, _free_port, _Handler
from tests.unit.notify.notify_support import TOKEN, fixed_now, notification, site_rules


@pytest.fixture
def sender(smtp_server: SmtpServer) -> Iterator[NotificationSender]:
    built = build_sender(smtp_server.url, site_rules(), now=fixed_now)
    yield built
    built.close()


def test_an_activation_token_arrives_with_both_parts_in_the_members_locale(
        smtp_server: SmtpServer, sender: NotificationSender) -> None:
    sender.send(notification(locale="es-US", context={"passphrase": "maple river"}))
    [received] = smtp_server.received
    assert received.mail_from == "no-reply@portal.example.org"
    assert received.recipients == ("maria.gomez@example.org",)
    message = received.message
    assert message["Subject"] == "Active su cuenta de Good Health Portal"
    assert message["Content-Language"] == "es-US"
    assert message.get_content_type() == "multipart/alternative"
    text, html = received.body("plain"), received.body("html")
    for body in (text, html):
        assert TOKEN in body and "maple river" in body
        assert f"https://portal.example.org/activate?token={TOKEN}" in body
    assert "código de activación" in text and '<html lang="es-US">' in html


def test_a_resend_carries_the_same_message_id(smtp_server: SmtpServer,
                                               sender: NotificationSender) -> None:
    sender.send(notification(id="ntf-resend"))
    sender.send(notification(id="ntf-resend"))
    ids = [r.message["Message-ID"] for r in smtp_server.received]
    assert ids == ["<ntf-resend@portal.example.org>"] * 2


def test_one_connection_serves_many_messages(smtp_server: SmtpServer,
                                             sender: NotificationSender) -> None:
    for number in range(5):
        sender.send(notification("otp_code", id=f"ntf-{number}", context={"code": f"00000{number}"}))
    assert len(smtp_server.received) == 5 and smtp_server.sessions == 1


def test_a_server_restart_is_survived_by_reconnecting(smtp_server: SmtpServer,
                                                      sender: NotificationSender) -> None:
    sender.send(notification(id="before"))
    smtp_server.restart()
    sender.send(notification(id="after"))
    assert [r.message["Message-ID"] for r in smtp_server.received] == [
        "<before@portal.example.org>", "<after@portal.example.org>"]
    assert smtp_server.sessions == 2


def test_a_refusal_then_acceptance_is_transient_and_nothing_is_doubled(
        smtp_server: SmtpServer, sender: NotificationSender) -> None:
    smtp_server.refuse("RCPT", "451 4.7.1 greylisted, try again later")
    with pytest.raises(DeliveryFailed) as first:
        sender.send(notification())
    assert not first.value.permanent
    assert first.value.reason == "recipient refused: 451 4.7.1 greylisted, try again later"
    assert smtp_server.received == []
    sender.send(notification())  # the notifier's retry
    assert len(smtp_server.received) == 1


@pytest.mark.parametrize(("stage", "reply", "reason"), [
    ("RCPT", "550 5.1.1 <maria.gomez@example.org>: no such user",
     "recipient refused: 550 5.1.1 <<address>>:"),
    ("DATA", "554 5.7.1 rejected by policy", "message refused: 554 5.7.1 rejected by policy"),
    ("MAIL", "553 5.7.1 sender not permitted", "sender refused: 553 5.7.1 sender not permitted"),
])
def test_a_5xx_refusal_is_permanent_and_the_connection_stays_usable(
        smtp_server: SmtpServer, sender: NotificationSender, stage: str, reply: str, reason: str) -> None:
    smtp_server.refuse(stage, reply)
    with pytest.raises(DeliveryFailed) as refused:
        sender.send(notification(id="refused"))
    assert refused.value.permanent and refused.value.reason.startswith(reason)
    assert "maria.gomez" not in refused.value.reason
    sender.send(notification(id="next"))
    assert [r.message["Message-ID"] for r in smtp_server.received] == ["<next@portal.example.org>"]
    assert smtp_server.sessions == 1


def test_a_4xx_on_data_is_transient(smtp_server: SmtpServer, sender: NotificationSender) -> None:
    smtp_server.refuse("DATA", "452 4.3.1 insufficient system storage")
    with pytest.raises(DeliveryFailed) as failed:
        sender.send(notification())
    assert not failed.value.permanent
    sender.send(notification())
    assert len(smtp_server.received) == 1


def test_authentication_with_the_url_credentials(smtp_server: SmtpServer) -> None:
    good = build_sender(smtp_server.auth_url, site_rules(), now=fixed_now)
    good.send(notification())
    good.close()
    assert len(smtp_server.received) == 1
    wrong = build_sender(f"smtp://portal:wrong@127.0.0.1:{smtp_server.port}", site_rules(), now=fixed_now)
    with pytest.raises(DeliveryFailed) as failed:
        wrong.send(notification())
    assert not failed.value.permanent and failed.value.reason.startswith("SMTP authentication failed: 535")
    assert "wrong" not in failed.value.reason


def test_nobody_listening_is_transient() -> None:
    sender = build_sender(f"smtp://127.0.0.1:{_free_port()}?timeout=2", site_rules(), now=fixed_now)
    with pytest.raises(DeliveryFailed) as failed:
        sender.send(notification())
    assert not failed.value.permanent and failed.value.reason.startswith("cannot reach the SMTP server")


def test_text_messages_arrive_at_the_carriers_gateway_address(smtp_server: SmtpServer,
                                                             sender: NotificationSender) -> None:
    sender.send(notification(channel="sms", recipient="(570) 212-3456", carrier="googlefi"))
    received = smtp_server.received
    assert [r.recipients for r in received] == [("5702123456@msg.fi.google.com",)] * 2
    first, second = (r.message for r in received)
    assert first["Subject"] is None and first.get_content_type() == "text/plain"
    assert first.get_content().startswith("(1/2) Good Health Portal: your activation code is " + TOKEN)
    assert second.get_content().strip().endswith(f"/activate?token={TOKEN}")
    assert all(len(r.message.get_content().strip()) <= 160 for r in received)


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def starttls_server() -> Iterator[tuple[int, _Handler]]:
    """An SMTP server that requires STARTTLS, with a certificate from a throwaway CA."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    handler, port = _Handler(), _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True)
    controller.start()
    yield port, handler
    controller.stop()


def test_starttls_upgrades_the_connection(starttls_server: tuple[int, _Handler]) -> None:
    port, handler = starttls_server
    sender = build_sender(f"smtp://127.0.0.1:{port}?starttls=true&verify=false", site_rules(),
                          now=fixed_now)
    sender.send(notification(id="over-tls"))
    sender.close()
    assert [r.message["Message-ID"] for r in handler.received] == ["<over-tls@portal.example.org>"]


def test_an_untrusted_certificate_is_refused_by_default(starttls_server: tuple[int, _Handler]) -> None:
    port, _ = starttls_server
    sender = build_sender(f"smtp://127.0.0.1:{port}?starttls=true", site_rules(), now=fixed_now)
    with pytest.raises(DeliveryFailed) as failed:
        sender.send(notification())
    assert not failed.value.permanent
    assert failed.value.reason.startswith("TLS with the SMTP server failed: CERTIFICATE_VERIFY_FAILED")


def test_without_starttls_that_server_refuses_and_says_so(starttls_server: tuple[int, _Handler]) -> None:
    port, _ = starttls_server
    sender = build_sender(f"smtp://127.0.0.1:{port}", site_rules(), now=fixed_now)
    with pytest.raises(DeliveryFailed) as failed:
        sender.send(notification())
    assert failed.value.reason.startswith("sender refused: 530")


# -- the embedded default: files ------------------------------------------------------------------


def test_the_file_transport_writes_one_readable_private_file_per_notification(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    sender = build_sender(f"file://{folder}", site_rules(), now=fixed_now)
    sender.send(notification(id="ntf-1"))
    sender.send(notification(id="ntf-1"))  # a resend replaces its file
    sender.send(notification("otp_code", id="ntf-2", channel="sms", recipient="5702123456",
                             carrier="verizon", context={"code": "123456"}))
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["20260304-145930_activation_token_email_mem-42_ntf-1.eml",
                     "20260304-145930_otp_code_sms_mem-42_ntf-2.eml"]
    assert folder.stat().st_mode & 0o077 == 0
    message = email.message_from_bytes((folder / names[0]).read_bytes(), policy=email.policy.default)
    assert message["To"] == "maria.gomez@example.org" and TOKEN in message.get_body(("plain",)).get_content()
    text = email.message_from_bytes((folder / names[1]).read_bytes(), policy=email.policy.default)
    assert text["To"] == "5702123456@vtext.com" and "123456 is your" in text.get_content()
