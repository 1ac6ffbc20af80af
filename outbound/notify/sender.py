"""The ``NotificationSender`` of portalbridge: render the kind's templates, then route the
result to the mail transport (e-mail) or the SMS gateway (text).

Log lines name the notification id, kind, channel and outcome; never the recipient, the
context or a server's reply (which may quote the recipient).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from engine.channels import is_email_address
from engine.notification_rules import NotificationRules
from engine.notifications import DeliveryFailed, Notification, NotificationSender
from outbound.notify.compose import Sender, compose_email
from outbound.notify.render import NotificationRenderer
from outbound.notify.sms import SmsGateway, TextMessage
from outbound.notify.smstext import split_parts, to_gsm
from outbound.notify.transport import MailTransport

__all__ = ["TemplatedSender"]

log = logging.getLogger("portalbridge.notify")


class TemplatedSender(NotificationSender):
    """Renders a notification in the member's locale and delivers it on its channel."""

    def __init__(self, rules: NotificationRules, transport: MailTransport, sms: SmsGateway,
                 now: Callable[[], datetime], renderer: NotificationRenderer | None = None) -> None:
        self.rules = rules
        self.transport = transport
        self.sms = sms
        self.renderer = renderer or NotificationRenderer(rules)
        self.sender = Sender.parse(rules.from_address)
        self._now = now

    def send(self, notification: Notification) -> None:
        try:
            if notification.channel == "email":
                self._email(notification)
            elif notification.channel == "sms":
                self._text(notification)
            else:
                raise DeliveryFailed(f"unknown channel '{notification.channel}'", permanent=True)
        except DeliveryFailed as failure:
            log.warning("notification %s %s %s: %s", notification.id, notification.kind,
                        notification.channel, "failed" if failure.permanent else "deferred")
            raise
        log.info("notification %s %s %s: sent", notification.id, notification.kind,
                 notification.channel)

    def close(self) -> None:
        self.sms.close()
        self.transport.close()

    def text_parts(self, notification: Notification) -> list[str]:
        """The parts a text message for ``notification`` is sent as."""
        body = self.renderer.sms(notification.kind, notification.locale, notification.context)
        return split_parts(to_gsm(body))

    def _email(self, notification: Notification) -> None:
        if not is_email_address(notification.recipient):
            raise DeliveryFailed("the recipient is not a valid e-mail address", permanent=True)
        rendered = self.renderer.email(notification.kind, notification.locale, notification.context)
        self.transport.deliver(compose_email(
            notification, self.sender, subject=rendered.subject, text=rendered.text,
            html=rendered.html, locale=rendered.locale, sent_at=self._now()))

    def _text(self, notification: Notification) -> None:
        parts = tuple(self.text_parts(notification))
        self.sms.send_text(TextMessage(notification=notification, parts=parts,
                                       locale=self.rules.locale_for(notification.locale)))
