"""Building the notification sender from settings: the one entry point the notifier needs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from engine.notification_rules import NotificationRules
from engine.notifications import NotificationSender
from outbound.notify.compose import Sender
from outbound.notify.mail_url import open_mail_transport
from outbound.notify.sender import TemplatedSender
from outbound.notify.sms import EmailToSmsGateway, SmsGateway

__all__ = ["build_sender"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_sender(mail_url: str, rules: NotificationRules, *, now: Callable[[], datetime] = _utc_now,
                 sms: SmsGateway | None = None) -> NotificationSender:
    """A sender delivering e-mail through ``mail_url`` and text messages through ``sms``
    (default: the carriers' e-mail-to-SMS gateways over the same transport).

    Nothing connects here: an SMTP connection opens with the first message and stays open.
    ``ConfigurationError`` if ``mail_url`` is not a usable mail URL.
    """
    transport = open_mail_transport(mail_url)
    gateway = sms or EmailToSmsGateway(transport, rules.carrier_table,
                                       Sender.parse(rules.from_address), now)
    return TemplatedSender(rules, transport, gateway, now)
