"""Notifications out: templates per kind and locale, e-mail over SMTP or into a folder,
text messages through carrier gateways, and printed activation letters.

Entry points for the notifier and the Workbench:
``build_sender(mail_url, rules)`` returns the ``NotificationSender``; ``render_letter`` and
``render_letters`` return PDF bytes; ``check_templates(rules)`` backs ``config check``.
"""

from __future__ import annotations

from outbound.notify.check import check_templates, count_templates
from outbound.notify.compose import OutgoingMail, Sender, compose_email, compose_text, message_id
from outbound.notify.factory import build_sender
from outbound.notify.kinds import KINDS, LETTER, Kind
from outbound.notify.letters import (
    ActivationLetter,
    LetterPrinter,
    postal_recipient,
    render_letter,
    render_letters,
)
from outbound.notify.mail_url import DEFAULT_MAIL_URL, open_mail_transport, redacted
from outbound.notify.render import NotificationRenderer, RenderedEmail
from outbound.notify.sender import TemplatedSender
from outbound.notify.sms import EmailToSmsGateway, SmsGateway, TextMessage, gateway_address
from outbound.notify.smstext import SMS_LIMIT, septets, split_parts, to_gsm
from outbound.notify.smtp import SmtpSettings, SmtpTransport, classify
from outbound.notify.templates import TemplateSet
from outbound.notify.transport import FileTransport, MailTransport

__all__ = [
    "DEFAULT_MAIL_URL",
    "KINDS",
    "LETTER",
    "SMS_LIMIT",
    "ActivationLetter",
    "EmailToSmsGateway",
    "FileTransport",
    "Kind",
    "LetterPrinter",
    "MailTransport",
    "NotificationRenderer",
    "OutgoingMail",
    "RenderedEmail",
    "Sender",
    "SmsGateway",
    "SmtpSettings",
    "SmtpTransport",
    "TemplateSet",
    "TemplatedSender",
    "TextMessage",
    "build_sender",
    "check_templates",
    "classify",
    "compose_email",
    "compose_text",
    "count_templates",
    "gateway_address",
    "message_id",
    "open_mail_transport",
    "postal_recipient",
    "redacted",
    "render_letter",
    "render_letters",
    "septets",
    "split_parts",
    "to_gsm",
]
