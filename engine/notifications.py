"""Notifications to members: the value, the sender port and the outbox port.

A handler writes a ``Notification`` through ``uow.notifications`` in the same transaction
as the change it announces; the notifier delivers it afterwards through a
``NotificationSender`` (a ``file://`` folder in this version; SMTP, carrier e-mail-to-SMS
gateways and printed letters plug in behind the same port). Secret values (an activation
token, a temporary passphrase) are named in ``secrets``: the store seals them with the
secret box and the notifier opens them only at delivery, so they are never at rest in clear.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "Channel",
    "DeliveryFailed",
    "Notification",
    "NotificationKind",
    "NotificationOutbox",
    "NotificationSender",
]


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class NotificationKind(StrEnum):
    ACTIVATION_TOKEN = "activation_token"  # noqa: S105 - a kind, not a secret
    REGISTRATION_COMPLETE = "registration_complete"
    DEACTIVATED = "deactivated"
    REACTIVATED = "reactivated"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a kind, not a secret
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a kind, not a secret


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """One message to one recipient on one channel. ``id`` is stable (the Message-ID's basis)."""

    id: str
    kind: str
    channel: Channel
    recipient: str  # e-mail address or mobile number
    carrier: str | None
    locale: str
    member_id: str
    context: Mapping[str, Any]
    created_at: datetime
    secrets: frozenset[str] = field(default_factory=frozenset)  # context keys sealed at rest


class DeliveryFailed(Exception):
    """A notification could not be delivered; ``permanent`` ones are not retried."""

    def __init__(self, reason: str, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class NotificationSender(ABC):
    """Delivers one notification (context already opened) or raises ``DeliveryFailed``."""

    @abstractmethod
    def send(self, notification: Notification) -> None:
        """Deliver ``notification``."""


class NotificationOutbox(ABC):
    """Collects notifications to store with the unit of work's commit."""

    @abstractmethod
    def add(self, notification: Notification) -> None:
        """Queue ``notification``; it is stored with the commit."""
