"""The notifications table for people: delivery per notification, replay, bounces.

What the notifier writes (``status``, ``attempts``, ``last_error``, ``sent_at``) is read back
here as one **delivery state** per notification, the word an operator and the Workbench use:

- ``queued``: waiting for its first attempt;
- ``failed``: an attempt failed and another is due at ``next_attempt_at`` (``last_error``
  holds the server's reason, addresses masked);
- ``sent``: the mail server (or the folder, or the SMS provider) took it;
- ``dead``: refused for good, or failed ``max_attempts`` times; kept until replayed;
- ``bounced``: taken by the server, then reported undeliverable (recorded by an operator
  from the bounce message, with its reason).

Nothing here reads a recipient or the context (which holds sealed secrets): a delivery
record is ids, kind, channel, state, times and the masked reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, case, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from engine.errors import NotFound, RejectedMessage
from engine.store.errors import classify_store_error
from engine.store.member_tables import notifications

__all__ = ["DELIVERY_STATES", "DeliveryRecord", "NotificationRows", "delivery_state"]

DELIVERY_STATES = ("queued", "failed", "sent", "dead", "bounced")
_REPLAYABLE = ("dead", "bounced")
_MESSAGE_ID = re.compile(r"^<?([^<>@\s]+)(?:\.\d+of\d+)?@[^<>\s]+>?$")
_COLUMNS = (notifications.c.id, notifications.c.member_id, notifications.c.kind,
            notifications.c.channel, notifications.c.status, notifications.c.attempts,
            notifications.c.created_at, notifications.c.sent_at, notifications.c.next_attempt_at,
            notifications.c.last_error)


def delivery_state(status: str, attempts: int) -> str:
    """The delivery state of a row (see the module text)."""
    if status == "pending":
        return "failed" if attempts else "queued"
    return status


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRecord:
    """How the delivery of one notification stands."""

    id: str
    member_id: str
    kind: str
    channel: str
    state: str  # one of DELIVERY_STATES
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None
    reason: str | None  # the last failure, or the bounce, as the server worded it (masked)

    def to_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment is not None else None

        return {"id": self.id, "kind": self.kind, "channel": self.channel, "delivery": self.state,
                "attempts": self.attempts, "created_at": self.created_at.isoformat(),
                "sent_at": iso(self.sent_at), "next_attempt_at": iso(self.next_attempt_at),
                "reason": self.reason}


def _record(row: Any) -> DeliveryRecord:
    return DeliveryRecord(id=row.id, member_id=row.member_id, kind=row.kind, channel=row.channel,
                          state=delivery_state(row.status, row.attempts), attempts=row.attempts,
                          created_at=row.created_at, sent_at=row.sent_at,
                          next_attempt_at=row.next_attempt_at, reason=row.last_error)


def _state_condition(state: str) -> Any:
    if state not in DELIVERY_STATES:
        raise RejectedMessage(f"unknown delivery state {state!r} (one of {', '.join(DELIVERY_STATES)})")
    if state == "queued":
        return (notifications.c.status == "pending") & (notifications.c.attempts == 0)
    if state == "failed":
        return (notifications.c.status == "pending") & (notifications.c.attempts > 0)
    return notifications.c.status == state


def notification_id(text: str) -> str:
    """A notification id from an id or from a Message-ID (``<id@domain>``, ``<id.1of2@...>``)."""
    match = _MESSAGE_ID.match(text.strip())
    return match.group(1) if match else text.strip()


class NotificationRows:
    """Reads and operator changes of the notifications table (never the notifier's claims)."""

    def __init__(self, database: Engine) -> None:
        self._db = database

    def counts(self) -> dict[str, int]:
        """How many notifications are in each delivery state."""
        state = case((notifications.c.status != "pending", notifications.c.status),
                     (notifications.c.attempts > 0, "failed"), else_="queued")
        try:
            with self._db.connect() as conn:
                found: dict[str, int] = dict(
                    conn.execute(select(state, func.count()).group_by(state)).all())
        except SQLAlchemyError as exc:
            raise classify_store_error(exc) from exc
        return {name: int(found.get(name, 0)) for name in DELIVERY_STATES}

    def find(self, *, state: str | None = None, member_id: str | None = None,
             limit: int = 100) -> list[DeliveryRecord]:
        """Notifications in ``state`` and/or of ``member_id``, newest first."""
        query = select(*_COLUMNS)
        if state is not None:
            query = query.where(_state_condition(state))
        if member_id is not None:
            query = query.where(notifications.c.member_id == member_id)
        query = query.order_by(notifications.c.created_at.desc(), notifications.c.id).limit(limit)
        try:
            with self._db.connect() as conn:
                return [_record(row) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise classify_store_error(exc) from exc

    def get(self, notification: str) -> DeliveryRecord | None:
        """One notification by id or Message-ID, or None."""
        try:
            with self._db.connect() as conn:
                row = conn.execute(select(*_COLUMNS).where(
                    notifications.c.id == notification_id(notification))).first()
        except SQLAlchemyError as exc:
            raise classify_store_error(exc) from exc
        return _record(row) if row is not None else None

    def of_member(self, member_id: str, limit: int = 20) -> list[DeliveryRecord]:
        """The member's latest notifications, newest first (the Workbench's member details)."""
        return self.find(member_id=member_id, limit=limit)

    def replay(self, ids: Sequence[str] = (), *, all_dead: bool = False) -> list[DeliveryRecord]:
        """Dead (or bounced) notifications made pending again, attempts reset; the ones made so.

        A replayed notification keeps its id, hence its Message-ID. Ids may be given as
        Message-IDs. Queued, failed and sent notifications are left alone (a sent activation
        token is sent again by Resend, which the audit log explains).
        """
        wanted = [notification_id(i) for i in ids]
        if not wanted and not all_dead:
            raise RejectedMessage("notifications replay: name notification ids, or --all-dead")
        conditions: list[ColumnElement[bool]] = []
        if wanted:
            conditions.append(notifications.c.id.in_(wanted) & notifications.c.status.in_(_REPLAYABLE))
        if all_dead:
            conditions.append(notifications.c.status == "dead")
        condition = or_(*conditions)
        try:
            with self._db.begin() as conn:
                rows = conn.execute(select(*_COLUMNS).where(condition)
                                    .order_by(notifications.c.created_at).with_for_update()).all()
                chosen = [row.id for row in rows]
                if chosen:
                    conn.execute(update(notifications).where(notifications.c.id.in_(chosen))
                                 .values(status="pending", attempts=0, next_attempt_at=None,
                                         last_error=None, sent_at=None))
        except SQLAlchemyError as exc:
            raise classify_store_error(exc) from exc
        return [_record(row) for row in rows]

    def bounced(self, notification: str, reason: str) -> DeliveryRecord:
        """Record that a sent notification bounced (``notification``: its id or Message-ID)."""
        wanted = notification_id(notification)
        try:
            with self._db.begin() as conn:
                row = conn.execute(select(*_COLUMNS).where(notifications.c.id == wanted)
                                   .with_for_update()).first()
                if row is None:
                    raise NotFound(f"no notification {wanted}")
                if row.status not in {"sent", "bounced"}:
                    raise RejectedMessage(f"notification {wanted} is "
                                          f"{delivery_state(row.status, row.attempts)}, not sent: "
                                          "only a sent notification can bounce")
                conn.execute(update(notifications).where(notifications.c.id == wanted)
                             .values(status="bounced", last_error=reason[:2000], next_attempt_at=None))
                row = conn.execute(select(*_COLUMNS).where(notifications.c.id == wanted)).one()
        except SQLAlchemyError as exc:
            raise classify_store_error(exc) from exc
        return _record(row)
