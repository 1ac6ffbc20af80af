"""E-mail over SMTP with the standard library's ``smtplib``, one connection kept open.

Opening a connection (TCP, EHLO, STARTTLS, AUTH) costs several round trips; a notifier that
did it per message could not keep its speed goal, so the connection is kept across messages
and reopened when it fails. A connection the server closed while idle is noticed on the next
message, which is then sent again once on a fresh connection.

What a failure means (``classify``):
- a reply to the message itself (MAIL FROM, RCPT TO, DATA): 5xx is permanent, 4xx transient;
- anything about the session (connecting, TLS, EHLO, AUTH, a dropped connection, a timeout)
  is transient: the message is not at fault, and it is retried once the operator has fixed
  the server or the credentials.
The reason kept with a failure is the server's reply with e-mail addresses and phone numbers
masked, since servers often quote the recipient. The password is never logged or kept in a
reason; ``smtplib``'s debug output (which would print it) stays off.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass, field
from typing import Literal

from engine.notifications import DeliveryFailed
from outbound.notify.compose import OutgoingMail
from outbound.notify.transport import MailTransport

__all__ = ["SmtpSettings", "SmtpTransport", "classify"]

Security = Literal["none", "starttls", "tls"]
_ADDRESS = re.compile(r"[^\s<>@]+@[^\s<>@]+")
_DIGITS = re.compile(r"\d{7,}")


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to connect (from ``PORTALBRIDGE_MAIL_URL``)."""

    host: str
    port: int
    security: Security = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    verify: bool = True  # check the server's certificate (off only for test servers)

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


class SmtpTransport(MailTransport):
    """Sends through one SMTP server over a connection kept open between messages."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def deliver(self, mail: OutgoingMail) -> None:
        reused = self._smtp is not None
        try:
            self._send(mail)
        except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
            self._drop()
            if not reused:
                raise classify(exc) from exc
            try:  # the server closed the idle connection: once more on a fresh one
                self._send(mail)
            except (smtplib.SMTPException, OSError) as again:
                self._drop()
                raise classify(again) from again
        except (smtplib.SMTPException, OSError) as exc:
            failure = classify(exc)
            if not failure.permanent:
                self._drop()  # a transient failure may have left the session unusable
            raise failure from exc

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _send(self, mail: OutgoingMail) -> None:
        smtp = self._smtp or self._connect()
        smtp.sendmail(mail.envelope_from, [mail.recipient], mail.data)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        smtp: smtplib.SMTP
        if s.security == "tls":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=s.tls_context())
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            smtp.ehlo()
            if s.security == "starttls":
                smtp.starttls(context=s.tls_context())
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, s.password or "")
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        return smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


def classify(exc: BaseException) -> DeliveryFailed:
    """The ``DeliveryFailed`` an ``smtplib`` or socket error means (see the module text)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()), (None, b""))
        return _reply("recipient refused", code, reply)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryFailed(f"SMTP authentication failed: {exc.smtp_code}", permanent=False)
    if isinstance(exc, smtplib.SMTPSenderRefused | smtplib.SMTPDataError):
        what = "sender refused" if isinstance(exc, smtplib.SMTPSenderRefused) else "message refused"
        return _reply(what, exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return DeliveryFailed("SMTP server closed the connection", permanent=False)
    if isinstance(exc, smtplib.SMTPResponseException):  # HELO, STARTTLS, AUTH mechanisms
        return DeliveryFailed(f"SMTP session refused: {_masked(exc.smtp_code, exc.smtp_error)}",
                              permanent=False)
    if isinstance(exc, TimeoutError):
        return DeliveryFailed("SMTP server did not answer in time", permanent=False)
    if isinstance(exc, ssl.SSLError):
        detail = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
        return DeliveryFailed(f"TLS with the SMTP server failed: {detail}", permanent=False)
    if isinstance(exc, OSError):
        return DeliveryFailed(f"cannot reach the SMTP server: {exc.strerror or exc}", permanent=False)
    return DeliveryFailed(f"SMTP error: {type(exc).__name__}", permanent=False)


def _reply(what: str, code: int | None, reply: bytes | str) -> DeliveryFailed:
    permanent = code is not None and 500 <= code < 600
    return DeliveryFailed(f"{what}: {_masked(code, reply)}", permanent=permanent)


def _masked(code: int | None, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    text = _DIGITS.sub("<number>", _ADDRESS.sub("<address>", text))
    return f"{code} {' '.join(text.split())}".strip()
