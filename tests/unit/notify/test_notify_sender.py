"""The notification sender with in-memory transports: e-mail shape, text routing, failures."""

from __future__ import annotations

import email
import email.policy
import logging
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from engine.notifications import DeliveryFailed
from outbound.notify import EmailToSmsGateway, Sender, TemplatedSender, message_id
from tests.fakes import MemoryMailTransport, MemorySmsGateway
from tests.unit.notify.notify_support import SENT_AT, TOKEN, fixed_now, notification, site_rules


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def mail_sender() -> tuple[TemplatedSender, MemoryMailTransport, MemorySmsGateway]:
    transport, sms = MemoryMailTransport(), MemorySmsGateway()
    return TemplatedSender(site_rules(), transport, sms, fixed_now), transport, sms


def test_an_email_is_multipart_alternative_with_both_parts_and_proper_headers() -> None:
    sender, transport, _ = mail_sender()
    sender.send(notification(locale="es-US"))
    [mail] = transport.delivered
    assert mail.envelope_from == "no-reply@portal.example.org"
    assert mail.recipient == "maria.gomez@example.org"
    message = parsed(mail.data)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "Active su cuenta de Good Health Portal"
    assert message["From"] == "Good Health Portal <no-reply@portal.example.org>"
    assert message["To"] == "maria.gomez@example.org"
    assert message["Date"].datetime == SENT_AT
    assert message["Content-Language"] == "es-US"
    assert message["Message-ID"] == "<ntf-0001@portal.example.org>"
    assert message["Auto-Submitted"] == "auto-generated"
    for part in message.iter_parts():
        assert TOKEN in part.get_content()
    assert b"\r\n" in mail.data and b"\n" not in mail.data.replace(b"\r\n", b"")


def test_a_resend_is_the_same_message_apart_from_its_date() -> None:
    transport, sms = MemoryMailTransport(), MemorySmsGateway()
    times = iter([SENT_AT, datetime(2026, 3, 4, 16, 0, tzinfo=UTC)])
    sender = TemplatedSender(site_rules(), transport, sms, lambda: next(times))
    sender.send(notification())
    sender.send(notification())
    first, second = (parsed(m.data) for m in transport.delivered)
    assert first["Message-ID"] == second["Message-ID"] == "<ntf-0001@portal.example.org>"
    assert first["Date"] != second["Date"]
    assert first.get_body(("html",)).get_content() == second.get_body(("html",)).get_content()
    assert transport.delivered[0].file_name == transport.delivered[1].file_name


def test_message_ids_are_stable_and_safe() -> None:
    assert message_id("abc-1", "example.org") == "<abc-1@example.org>"
    odd = message_id("a b<c>", "example.org")
    assert odd == message_id("a b<c>", "example.org") and " " not in odd and odd.count("<") == 1


def test_the_file_name_says_when_what_and_for_whom() -> None:
    sender, transport, _ = mail_sender()
    sender.send(notification("otp_code", id="ntf-7"))
    assert transport.delivered[0].file_name == "20260304-145930_otp_code_email_mem-42_ntf-7.eml"


def test_text_messages_go_to_the_gateway_as_gsm_parts() -> None:
    sender, transport, sms = mail_sender()
    sender.send(notification(channel="sms", recipient="(570) 212-3456", carrier="verizon",
                             locale="es-US"))
    [text] = sms.sent
    assert text.locale == "es-US" and len(text.parts) == 2 and TOKEN in text.parts[0]
    assert "codigo de activacion" in text.parts[0]
    assert transport.delivered == []


def test_the_email_to_sms_gateway_mails_each_part_to_the_carrier() -> None:
    transport = MemoryMailTransport()
    rules = site_rules()
    gateway = EmailToSmsGateway(transport, rules.carrier_table, Sender.parse(rules.from_address), fixed_now)
    sender = TemplatedSender(rules, transport, gateway, fixed_now)
    sender.send(notification(channel="sms", recipient="+1 570-212-3456", carrier="verizon"))
    assert [m.recipient for m in transport.delivered] == ["5702123456@vtext.com"] * 2
    first, second = (parsed(m.data) for m in transport.delivered)
    assert first["Subject"] is None and first.get_content_type() == "text/plain"
    assert first["Message-ID"] == "<ntf-0001.1of2@portal.example.org>"
    assert second["Message-ID"] == "<ntf-0001.2of2@portal.example.org>"
    assert first.get_content().startswith("(1/2) ") and TOKEN in first.get_content()


@pytest.mark.parametrize(("recipient", "carrier", "reason"), [
    ("5702123456", "tmobile", "T-Mobile retired its e-mail-to-SMS gateway (tmomail.net) on 2024-12-01"),
    ("5702123456", "acme", "unknown carrier 'acme'"),
    ("12345", "verizon", "the mobile number is not a 10-digit US number")])
def test_undeliverable_text_messages_fail_permanently(recipient: str, carrier: str, reason: str) -> None:
    transport, rules = MemoryMailTransport(), site_rules()
    today = datetime(2026, 11, 29, tzinfo=UTC)
    gateway = EmailToSmsGateway(transport, rules.carrier_table, Sender.parse(rules.from_address),
                                lambda: today)
    sender = TemplatedSender(rules, transport, gateway, lambda: today)
    with pytest.raises(DeliveryFailed) as failed:
        sender.send(notification(channel="sms", recipient=recipient, carrier=carrier))
    assert failed.value.permanent and failed.value.reason.startswith(reason)
    assert transport.delivered == []


def test_a_bad_address_fails_permanently_and_transport_failures_pass_through() -> None:
    sender, transport, _ = mail_sender()
    with pytest.raises(DeliveryFailed) as bad:
        sender.send(notification(recipient="maria@example.org\r\nBcc: all@example.org"))
    assert bad.value.permanent
    transport.fail_next("SMTP server did not answer in time", permanent=False)
    with pytest.raises(DeliveryFailed) as later:
        sender.send(notification())
    assert not later.value.permanent
    sender.send(notification())
    assert len(transport.delivered) == 1


def test_logs_name_ids_kind_channel_and_outcome_never_recipient_or_secrets(
        caplog: pytest.LogCaptureFixture) -> None:
    sender, transport, _ = mail_sender()
    caplog.set_level(logging.DEBUG)
    sender.send(notification(context={"passphrase": "maple river"}))
    transport.fail_next("recipient refused: 550 <address> unknown", permanent=True)
    with pytest.raises(DeliveryFailed):
        sender.send(notification(id="ntf-0002"))
    text = caplog.text
    assert "ntf-0001 activation_token email: sent" in text
    assert "ntf-0002 activation_token email: failed" in text
    for secret in (TOKEN, "maple river", "maria.gomez", "example.org", "550"):
        assert secret not in text


def test_send_batch_delivers_in_order_and_reports_each_outcome() -> None:
    sender, transport, sms = mail_sender()
    batch = [notification(id="a"), notification(id="b", recipient="not an address"),
             notification("otp_code", id="c", context={"code": "111111"}),
             notification(id="d", channel="sms", recipient="5702123456", carrier="verizon"),
             notification(id="e")]
    transport.fail_next("SMTP server closed the connection", permanent=False)
    outcomes = sender.send_batch(batch)
    assert [o.permanent if o else None for o in outcomes] == [False, True, None, None, None]
    assert [m.message_id for m in transport.delivered] == [
        "<c@portal.example.org>", "<e@portal.example.org>"]
    assert [t.notification.id for t in sms.sent] == ["d"]
    assert sender.send_batch([notification(id="f")]) == [None]
