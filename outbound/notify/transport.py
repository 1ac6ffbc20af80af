"""Mail transports: where composed messages go. A folder of files, or SMTP (``smtp.py``)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

from engine.notifications import DeliveryFailed
from outbound.notify.compose import OutgoingMail

__all__ = ["FileTransport", "MailTransport"]


class MailTransport(ABC):
    """Hands a composed message to the mail system; one message at a time, one thread."""

    @abstractmethod
    def deliver(self, mail: OutgoingMail) -> None:
        """Deliver ``mail`` or raise ``DeliveryFailed`` (``permanent`` when resending the
        same message cannot succeed)."""

    def close(self) -> None:  # noqa: B027 - optional
        """Close a connection kept between messages."""


class FileTransport(MailTransport):
    """Writes each message as an RFC 5322 file (``.eml``) into a folder: the embedded default.

    The file is written under a temporary name and renamed, so a reader never sees half a
    message; a resend of the same notification replaces its file rather than adding one.
    Files hold tokens, so the folder is created readable by its owner only.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def deliver(self, mail: OutgoingMail) -> None:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(mail.data)
                os.replace(temporary, self.folder / mail.file_name)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            raise DeliveryFailed(f"cannot write to the mail folder ({exc.strerror})",
                                 permanent=False) from exc
