"""Rendered text to RFC 5322 bytes: headers, a stable Message-ID, the MIME parts.

The message is laid out here, in a few lines, rather than by the ``email`` package's
generator: measured here, ``MIMEMultipart(...).as_bytes()`` took about 500 us per two-part
message (most of it folding headers we already know are short and ASCII), which alone would
hold one notifier under the speed goal. ASCII parts go as they are (``7bit``), others
quoted-printable. The pieces that need care still come from the standard library:
quoted-printable from ``binascii``, encoded words for a non-ASCII subject
or sender name from ``email.header``/``email.utils``, and the tests read every message back
with the ``email`` parser.

Everything in a message derives from the notification (the Message-ID and the MIME
boundary from its id), except ``Date``, which is when it was sent: a resend after a crash
carries the same Message-ID, so mail systems can drop the duplicate.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr

from engine.notifications import Notification

__all__ = ["OutgoingMail", "Sender", "compose_email", "compose_text", "message_id"]

_ATOM = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_LINE = 998  # RFC 5322 2.1.1: the longest line, CRLF excluded


@dataclass(frozen=True, slots=True)
class Sender:
    """The site's From: display name and address, parsed once from routing.yaml."""

    name: str
    address: str
    header: str = field(init=False)  # the From: value, encoded once

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", formataddr((self.name, self.address), charset="utf-8"))

    @classmethod
    def parse(cls, value: str) -> Sender:
        name, address = parseaddr(value)
        return cls(name, address)

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2] or "portalbridge.invalid"


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """One message ready for a mail transport: envelope, bytes and a name for a file."""

    envelope_from: str
    recipient: str
    data: bytes
    file_name: str  # for the file transport: sortable and searchable by a person
    message_id: str


def message_id(notification_id: str, domain: str, suffix: str = "") -> str:
    """``<id@domain>``; an id that is not a plain atom is replaced by its SHA-256."""
    local = notification_id if _ATOM.match(notification_id) else \
        hashlib.sha256(notification_id.encode()).hexdigest()
    return f"<{local}{suffix}@{domain}>"


def compose_email(notification: Notification, sender: Sender, *, subject: str, text: str,
                  html: str, locale: str, sent_at: datetime) -> OutgoingMail:
    """A multipart/alternative e-mail: plain text first, HTML preferred by clients that can."""
    msg_id = message_id(notification.id, sender.domain)
    boundary = _boundary(msg_id).encode()
    head = _headers(notification, sender, subject=subject, locale=locale, sent_at=sent_at,
                    msg_id=msg_id, recipient=notification.recipient)
    data = b"".join((
        head, b'Content-Type: multipart/alternative; boundary="', boundary, b'"\r\n\r\n',
        b"--", boundary, b"\r\n", _text_part(text, b"plain"),
        b"\r\n--", boundary, b"\r\n", _text_part(html, b"html"),
        b"\r\n--", boundary, b"--\r\n"))
    return OutgoingMail(envelope_from=sender.address, recipient=notification.recipient, data=data,
                        message_id=msg_id, file_name=file_name(notification, ""))


def compose_text(notification: Notification, sender: Sender, *, recipient: str, body: str,
                 part: int, parts: int, locale: str, sent_at: datetime) -> OutgoingMail:
    """One part of a text message as a plain e-mail to a carrier's gateway (no Subject:
    gateways put it in front of the text, where it would eat the 160 characters)."""
    suffix = f".{part}of{parts}" if parts > 1 else ""
    msg_id = message_id(notification.id, sender.domain, suffix)
    head = _headers(notification, sender, subject=None, locale=locale, sent_at=sent_at,
                    msg_id=msg_id, recipient=recipient)
    return OutgoingMail(envelope_from=sender.address, recipient=recipient,
                        data=head + _text_part(body, b"plain"), message_id=msg_id,
                        file_name=file_name(notification, suffix))


def file_name(notification: Notification, suffix: str) -> str:
    """``20260307-203000_activation_token_email_<member>_<id>.eml``: by time, kind, member."""
    stamp = notification.created_at.strftime("%Y%m%d-%H%M%S")
    parts = (stamp, notification.kind, notification.channel, notification.member_id,
             notification.id + suffix)
    return "_".join(re.sub(r"[^A-Za-z0-9._-]", "-", part) for part in parts) + ".eml"


def _boundary(msg_id: str) -> str:
    return "=_pb_" + hashlib.sha256(msg_id.encode()).hexdigest()[:24]


def _text_part(body: str, subtype: bytes) -> bytes:
    """A UTF-8 text part: as it is (7bit) when it is ASCII in lines SMTP carries (at most 998
    octets), else quoted-printable; either way readable in the files and 7-bit on the wire."""
    plain = body.replace("\r\n", "\n")  # a value may bring its own CRLF
    if plain.isascii() and "\r" not in plain and max(map(len, plain.split("\n"))) <= _LINE:
        encoding, encoded = b"7bit", plain.replace("\n", "\r\n").encode("ascii")
    else:
        encoding = b"quoted-printable"
        encoded = binascii.b2a_qp(plain.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return b"".join((b"Content-Type: text/", subtype, b'; charset="utf-8"\r\n'
                     b"Content-Transfer-Encoding: ", encoding, b"\r\n\r\n", encoded))


def _headers(notification: Notification, sender: Sender, *, subject: str | None, locale: str,
             sent_at: datetime, msg_id: str, recipient: str) -> bytes:
    """The header block; every value is ASCII (the subject encoded when it is not)."""
    fields = [("From", sender.header), ("To", recipient)]
    if subject is not None:
        fields.append(("Subject", _subject(subject)))
    fields += [("Date", format_datetime(sent_at)), ("Message-ID", msg_id),
               ("Content-Language", locale),
               ("Auto-Submitted", "auto-generated"),  # RFC 3834: no vacation auto-replies
               ("X-Portalbridge-Kind", notification.kind), ("MIME-Version", "1.0")]
    return "".join(f"{name}: {value}\r\n" for name, value in fields).encode("ascii")


def _subject(subject: str) -> str:
    if subject.isascii() and len(subject) <= 78:
        return subject
    return Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
