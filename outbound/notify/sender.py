"""The ``NotificationSender`` of portalbridge: render the kind's templates, then route the
result to the mail transport (e-mail) or the SMS gateway (text).

Log lines name the notification id, kind, channel and outcome; never the recipient, the
context or a server's reply (which may quote the recipient).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from engine.channels import is_email_address
from engine.notification_rules import NotificationRules
from engine.notifications import DeliveryFailed, Notification, NotificationSender
from outbound.notify.compose import OutgoingMail, Sender, compose_email
from outbound.notify.render import NotificationRenderer
from outbound.notify.sms import SmsGateway, TextMessage
from outbound.notify.smstext import split_parts, to_gsm
from outbound.notify.transport import MailTransport

__all__ = ["TemplatedSender"]

log = logging.getLogger("portalbridge.notify")

_Prepared = OutgoingMail | TextMessage | DeliveryFailed


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
        outcome = self._outcome(notification, self._prepared(notification))
        if outcome is not None:
            raise outcome

    def send_batch(self, notifications: Sequence[Notification]) -> list[DeliveryFailed | None]:
        """Like ``send`` for each, in order, rendering the next message on a second thread
        while this one waits for the server's replies (rendering is CPU, waiting is not)."""
        if len(notifications) < 2:
            return super().send_batch(notifications)
        # A short queue: the renderer thread blocks (and lets this thread run) when ahead.
        ready: queue.Queue[_Prepared] = queue.Queue(maxsize=2)
        renderer = threading.Thread(target=self._prepare_all, args=(notifications, ready),
                                    name="notify-render", daemon=True)
        renderer.start()
        outcomes = [self._outcome(notification, ready.get()) for notification in notifications]
        renderer.join()
        return outcomes

    def close(self) -> None:
        self.sms.close()
        self.transport.close()

    def text_parts(self, notification: Notification) -> list[str]:
        """The parts a text message for ``notification`` is sent as."""
        body = self.renderer.sms(notification.kind, notification.locale, notification.context)
        return split_parts(to_gsm(body))

    def _prepare_all(self, notifications: Sequence[Notification], ready: queue.Queue[_Prepared]) -> None:
        for notification in notifications:
            ready.put(self._prepared(notification))

    def _prepared(self, notification: Notification) -> _Prepared:
        """The message ready for the wire, or why there is none."""
        try:
            if notification.channel == "email":
                return self._email(notification)
            if notification.channel == "sms":
                return self._text(notification)
            return DeliveryFailed(f"unknown channel '{notification.channel}'", permanent=True)
        except DeliveryFailed as failure:
            return failure

    def _outcome(self, notification: Notification, prepared: _Prepared) -> DeliveryFailed | None:
        """Deliver a prepared message; log and return the failure, if any."""
        try:
            if isinstance(prepared, DeliveryFailed):
                raise prepared
            if isinstance(prepared, TextMessage):
                self.sms.send_text(prepared)
            else:
                self.transport.deliver(prepared)
        except DeliveryFailed as failure:
            log.warning("notification %s %s %s: %s", notification.id, notification.kind,
                        notification.channel, "failed" if failure.permanent else "deferred")
            return failure
        log.debug("notification %s %s %s: sent", notification.id, notification.kind,
                 notification.channel)
        return None

    def _email(self, notification: Notification) -> OutgoingMail:
        if not is_email_address(notification.recipient):
            raise DeliveryFailed("the recipient is not a valid e-mail address", permanent=True)
        rendered = self.renderer.email(notification.kind, notification.locale, notification.context)
        return compose_email(notification, self.sender, subject=rendered.subject, text=rendered.text,
                             html=rendered.html, locale=rendered.locale, sent_at=self._now())

    def _text(self, notification: Notification) -> TextMessage:
        return TextMessage(notification=notification, parts=tuple(self.text_parts(notification)),
                           locale=self.rules.locale_for(notification.locale))
