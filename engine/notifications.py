"""The notification port: what the engine hands to whatever delivers e-mail and text messages.

Membership writes a notification row in the same transaction as the change it reports
(``UnitOfWork.notifications``, a ``NotificationOutbox``; the context values named in
``secrets`` are sealed with the secret box there); the notifier reads the row back as a
``Notification`` (secrets opened) and gives it to a ``NotificationSender``. The sender either
delivers it or raises ``DeliveryFailed`` saying whether trying again could help.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from engine.errors import EngineError

__all__ = ["Channel", "DeliveryFailed", "Notification", "NotificationOutbox", "NotificationSender"]

Channel = Literal["email", "sms"]


@dataclass(frozen=True, kw_only=True)
class Notification:
    """One message to one member on one channel.

    ``id`` is stable across retries: the e-mail Message-ID is derived from it, so a
    duplicate sent after a crash can be dropped by mail systems. ``context`` holds the
    template values of the kind (see ``outbound.notify.kinds``), secrets already decrypted.
    """

    id: str
    kind: str
    channel: Channel
    recipient: str  # an e-mail address, or a mobile number for "sms"
    carrier: str | None  # carrier key (``engine.carriers``) for "sms"
    locale: str  # e.g. "en-US"; an unconfigured locale falls back to the site default
    member_id: str
    context: Mapping[str, str]
    created_at: datetime
    #: Context keys whose values are secret (a token, a passphrase): sealed at rest.
    secrets: frozenset[str] = field(default_factory=frozenset)


class DeliveryFailed(EngineError):
    """A notification was not delivered.

    ``permanent`` means the same notification will never succeed as it is (the server
    refused the recipient or the message with a 5xx reply, the context cannot be rendered);
    otherwise it may succeed later (4xx replies, connection errors, timeouts).
    """

    def __init__(self, reason: str, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


class NotificationSender(ABC):
    """Delivers notifications, one at a time, on whatever transport it was built with."""

    @abstractmethod
    def send(self, notification: Notification) -> None:
        """Deliver ``notification`` or raise ``DeliveryFailed``.

        Returning means the receiving system (SMTP server, file folder, SMS provider) took
        responsibility for the message.
        """

    def send_batch(self, notifications: Sequence[Notification]) -> list[DeliveryFailed | None]:
        """Deliver each notification in order; for each, None when delivered or its failure.

        One failure does not stop the others. Senders may overlap the work of consecutive
        notifications (rendering one while the server answers another); this default sends
        them one by one.
        """
        outcomes: list[DeliveryFailed | None] = []
        for notification in notifications:
            try:
                self.send(notification)
            except DeliveryFailed as failure:
                outcomes.append(failure)
            else:
                outcomes.append(None)
        return outcomes

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections the sender keeps open between messages."""


class NotificationOutbox(ABC):
    """Collects notifications to store with the unit of work's commit."""

    @abstractmethod
    def add(self, notification: Notification) -> None:
        """Queue ``notification``; it is stored with the commit."""
