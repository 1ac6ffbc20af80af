"""``file://FOLDER``: each notification as an RFC 5322 file, as Django's file e-mail backend.

Files are named so a person can find them: ``<UTC time>-<kind>-<member id>-<channel>.eml``.
A text message is written the same way (``...-sms.eml``, addressed to the number and its
carrier). Writes go to a temporary name first and are renamed, so a reader never sees half
a file; an existing file of the same notification is replaced (a retry writes it again).
"""

from __future__ import annotations

import os
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from engine.notifications import Channel, DeliveryFailed, Notification, NotificationSender
from outbound.notify.texts import render

__all__ = ["FileSender", "folder_of"]

SENDER = "portal@portalbridge.invalid"


def folder_of(url: str, cwd: Path | None = None) -> Path:
    """The folder of a ``file://`` URL (``file://./mail`` is relative to the working folder)."""
    path = Path(url.removeprefix("file://"))
    return path if path.is_absolute() else (cwd or Path.cwd()) / path


class FileSender(NotificationSender):
    """Writes notifications into a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, notification: Notification) -> None:
        message = self.message(notification)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / self.file_name(notification)
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(bytes(message))
            os.replace(temporary, path)
        except OSError as exc:
            raise DeliveryFailed(f"cannot write to {self.folder}: {exc.strerror}", permanent=False) from exc

    @staticmethod
    def file_name(n: Notification) -> str:
        stamp = n.created_at.strftime("%Y%m%dT%H%M%S%fZ")
        return f"{stamp}-{n.kind}-{n.member_id}-{n.channel.value}-{n.id[:8]}.eml"

    @staticmethod
    def message(n: Notification) -> EmailMessage:
        subject, body = render(n.kind, n.context)
        message = EmailMessage()
        message["From"] = SENDER
        message["To"] = n.recipient if n.channel is Channel.EMAIL else \
            f"{n.recipient} <sms:{n.carrier or 'unknown-carrier'}>"
        message["Subject"] = subject
        message["Date"] = format_datetime(n.created_at)
        message["Message-ID"] = f"<{n.id}@portalbridge.invalid>"  # stable: a retry is the same mail
        message["X-Portalbridge-Kind"] = n.kind
        message["X-Portalbridge-Member"] = n.member_id
        message["X-Portalbridge-Channel"] = n.channel.value
        message["Content-Language"] = n.locale
        message.set_content(body)
        return message
