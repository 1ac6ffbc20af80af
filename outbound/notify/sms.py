"""Text messages: the ``SmsGateway`` port and its e-mail-to-SMS implementation.

The port takes a finished text (already in the GSM alphabet, split into parts of at most
160 characters); an HTTP SMS provider can implement it later without touching templates or
the sender. The shipped implementation mails each part to ``<10 digits>@<gateway domain>``
through the same mail transport as e-mail.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from engine.carriers import Carrier
from engine.channels import normalise_mobile
from engine.notifications import DeliveryFailed, Notification
from outbound.notify.compose import Sender, compose_text
from outbound.notify.transport import MailTransport

__all__ = ["EmailToSmsGateway", "SmsGateway", "TextMessage", "gateway_address"]


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A text message ready to send: the notification it carries and its parts, in order."""

    notification: Notification
    parts: tuple[str, ...]
    locale: str  # the locale the text was rendered in


class SmsGateway(ABC):
    """Sends text messages to mobile numbers."""

    @abstractmethod
    def send_text(self, message: TextMessage) -> None:
        """Send every part of ``message``, in order, or raise ``DeliveryFailed``.

        A failure after some parts were sent sends them all again on the next attempt.
        """

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections kept between messages."""


def gateway_address(mobile: str, carrier_key: str | None, carriers: Mapping[str, Carrier],
                    on: datetime) -> str:
    """``5552123456@vtext.com`` for a number and carrier, or a permanent ``DeliveryFailed``."""
    digits = normalise_mobile(mobile)
    if digits is None:
        raise DeliveryFailed("the mobile number is not a 10-digit US number", permanent=True)
    carrier = carriers.get(carrier_key or "")
    if carrier is None:
        raise DeliveryFailed(f"unknown carrier '{carrier_key}'", permanent=True)
    problem = carrier.gateway_problem(on.date())
    if problem:
        raise DeliveryFailed(problem, permanent=True)
    return f"{digits}@{carrier.gateway}"


class EmailToSmsGateway(SmsGateway):
    """Carrier e-mail-to-SMS gateways, reached through a mail transport."""

    def __init__(self, transport: MailTransport, carriers: Mapping[str, Carrier], sender: Sender,
                 now: Callable[[], datetime]) -> None:
        self.transport = transport
        self.carriers = carriers
        self.sender = sender
        self._now = now

    def send_text(self, message: TextMessage) -> None:
        notification = message.notification
        sent_at = self._now()
        address = gateway_address(notification.recipient, notification.carrier, self.carriers, sent_at)
        count = len(message.parts)
        for number, body in enumerate(message.parts, 1):
            self.transport.deliver(compose_text(
                notification, self.sender, recipient=address, body=body, part=number,
                parts=count, locale=message.locale, sent_at=sent_at))

    def close(self) -> None:
        self.transport.close()
