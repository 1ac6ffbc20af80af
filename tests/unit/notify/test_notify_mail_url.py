"""PORTALBRIDGE_MAIL_URL forms, and what each SMTP failure means for a retry."""

from __future__ import annotations

import smtplib
import ssl
from pathlib import Path

import pytest

from engine.config import Settings
from engine.errors import ConfigurationError
from outbound.notify import FileTransport, SmtpTransport, classify, open_mail_transport, redacted
from outbound.notify.mail_url import parse_smtp_url


def test_file_urls_name_a_folder_relative_or_absolute() -> None:
    relative = open_mail_transport("file://mail")
    assert isinstance(relative, FileTransport) and relative.folder == Path("mail")
    absolute = open_mail_transport("file:///srv/portal/mail")
    assert isinstance(absolute, FileTransport) and absolute.folder == Path("/srv/portal/mail")


def test_the_default_is_the_mail_folder_and_the_password_stays_out_of_the_settings_repr() -> None:
    assert Settings.from_environment({}, cwd=Path("/x")).mail_url == "file://mail"
    settings = Settings.from_environment({"PORTALBRIDGE_MAIL_URL": "smtps://u:hunter2@mail.example.org"})
    assert settings.mail_url == "smtps://u:hunter2@mail.example.org"
    assert "hunter2" not in repr(settings)


def test_smtp_with_starttls_and_credentials() -> None:
    s = parse_smtp_url("smtp://portal%40example.org:p%40ss%3Aword@mail.example.org:587?starttls=true")
    assert (s.host, s.port, s.security) == ("mail.example.org", 587, "starttls")
    assert (s.username, s.password) == ("portal@example.org", "p@ss:word")
    assert "p@ss:word" not in repr(s)
    assert parse_smtp_url("smtp://mail.example.org?starttls=true").port == 587


def test_smtps_and_plain_smtp_defaults() -> None:
    s = parse_smtp_url("smtps://mail.example.org")
    assert (s.port, s.security, s.verify, s.timeout) == (465, "tls", True, 10.0)
    plain = parse_smtp_url("smtp://relay.internal?timeout=2.5&verify=false")
    assert (plain.port, plain.security, plain.timeout, plain.verify) == (25, "none", 2.5, False)
    assert isinstance(open_mail_transport("smtp://127.0.0.1:2525"), SmtpTransport)


def test_a_password_is_sent_in_clear_only_to_the_loopback_address() -> None:
    assert parse_smtp_url("smtp://u:p@127.0.0.1:2525").username == "u"
    assert parse_smtp_url("smtp://u:p@localhost:2525").password == "p"
    with pytest.raises(ConfigurationError) as caught:
        parse_smtp_url("smtp://u:secret@mail.example.org:587")
    assert "unencrypted" in caught.value.reason and "secret" not in caught.value.reason


@pytest.mark.parametrize(("url", "says"), [
    ("mailto://x", "is not a file://, smtp:// or smtps:// URL"),
    ("file://", "file:// needs a folder"),
    ("smtp://", "names no host"),
    ("smtp://host:99999", "invalid port"),
    ("smtp://host?starttls=maybe", "starttls='maybe' is not true or false"),
    ("smtps://host?starttls=true", "smtps:// is TLS already"),
    ("smtp://host?tls=1", "unknown option(s) tls"),
    ("smtp://host?timeout=0", "timeout must be more than 0 seconds"),
    ("smtp://u:topsecret@host?timeout=soon", "timeout='soon' is not a number of seconds"),
])
def test_bad_urls_are_one_clear_configuration_error(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_mail_transport(url)
    assert caught.value.reason.startswith("PORTALBRIDGE_MAIL_URL: ") and says in caught.value.reason
    assert "topsecret" not in caught.value.reason


def test_redacted_hides_only_the_password() -> None:
    assert redacted("smtp://user:pw@host:587?starttls=true") == "smtp://user:***@host:587?starttls=true"
    assert redacted("smtps://host") == "smtps://host"


@pytest.mark.parametrize(("error", "permanent", "reason"), [
    (smtplib.SMTPRecipientsRefused({"maria@example.org": (550, b"5.1.1 <maria@example.org> unknown")}),
     True, "recipient refused: 550 5.1.1 <<address>> unknown"),
    (smtplib.SMTPRecipientsRefused({"x@example.org": (452, b"4.2.2 mailbox full")}),
     False, "recipient refused: 452 4.2.2 mailbox full"),
    (smtplib.SMTPDataError(554, b"5.7.1 message rejected as spam"), True,
     "message refused: 554 5.7.1 message rejected as spam"),
    (smtplib.SMTPDataError(451, b"4.3.0 try again later"), False,
     "message refused: 451 4.3.0 try again later"),
    (smtplib.SMTPSenderRefused(553, b"sender not allowed", "no-reply@x"), True,
     "sender refused: 553 sender not allowed"),
    (smtplib.SMTPAuthenticationError(535, b"bad credentials"), False, "SMTP authentication failed: 535"),
    (smtplib.SMTPConnectError(554, b"no service"), False, "SMTP session refused: 554 no service"),
    (smtplib.SMTPServerDisconnected("gone"), False, "SMTP server closed the connection"),
    (TimeoutError(), False, "SMTP server did not answer in time"),
    (ConnectionRefusedError(111, "Connection refused"), False,
     "cannot reach the SMTP server: Connection refused"),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), False, "TLS with the SMTP server failed"),
    (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), False,
     "cannot reach the SMTP server: STARTTLS extension not supported by server."),
])
def test_smtp_failures_map_to_permanent_or_transient(error: BaseException, permanent: bool,
                                                      reason: str) -> None:
    failure = classify(error)
    assert failure.permanent is permanent and failure.reason.startswith(reason), failure.reason


def test_replies_quoting_numbers_are_masked() -> None:
    failure = classify(smtplib.SMTPRecipientsRefused({"5702123456@vtext.com": (550, b"5702123456 inactive")}))
    assert "5702123456" not in failure.reason and "<number> inactive" in failure.reason
