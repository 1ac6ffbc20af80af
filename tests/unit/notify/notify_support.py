"""What the notification tests share: rules, a notification builder, a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.notification_rules import NotificationRules
from engine.notifications import Channel, Notification
from outbound.notify.kinds import KINDS

SENT_AT = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
TOKEN = "Q4WX-8PLM-3RTZ-K9VB-2HND-7CJF"


def site_rules(**changes: Any) -> NotificationRules:
    """The notification rules of a test site (routing.yaml's section, validated)."""
    data: dict[str, Any] = {
        "from": "Good Health Portal <no-reply@portal.example.org>",
        "site_name": "Good Health Portal", "time_zone": "America/New_York",
        "activation_url": "https://portal.example.org/activate",
        "help_contact": {"en-US": "the help desk at (555) 010-0100",
                         "es-US": "la mesa de ayuda al (555) 010-0100"}}
    data.update(changes)
    return NotificationRules.model_validate(data)


def notification(kind: str = "activation_token", *, channel: Channel = "email",
                 recipient: str = "maria.gomez@example.org", carrier: str | None = None,
                 locale: str = "en-US", context: dict[str, str] | None = None,
                 id: str = "ntf-0001") -> Notification:
    """A notification of ``kind`` with its sample context (the token replaced by TOKEN)."""
    values = dict(KINDS[kind].sample)
    if "token" in values:
        values["token"] = TOKEN
    values.update(context or {})
    return Notification(id=id, kind=kind, channel=channel, recipient=recipient, carrier=carrier,
                        locale=locale, member_id="mem-42", context=values,
                        created_at=datetime(2026, 3, 4, 14, 59, 30, tzinfo=UTC))


def fixed_now() -> datetime:
    return SENT_AT
