"""``portalbridge outbox list`` and ``outbox replay``: what is stuck, and sending it again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from engine.errors import ConfigurationError
from engine.store.errors import classify_store_error
from engine.store.tables import outbox
from outbound.outbox_store import COLUMNS, row_from
from outbound.ports import OutboxRow

__all__ = ["STATUSES", "count_by_status", "list_rows", "oldest_pending", "replay"]

#: pending: waiting for the relay; sent: confirmed by the broker; unrouted: confirmed, but no
#: queue was bound for its routing key; dead: refused too often, waiting for a replay.
STATUSES = ("pending", "sent", "unrouted", "dead")


def count_by_status(engine: Engine) -> dict[str, int]:
    """How many rows are in each status."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
            found: dict[str, int] = {status: count for status, count in rows}
    except SQLAlchemyError as exc:
        raise classify_store_error(exc) from exc
    return {status: found.get(status, 0) for status in STATUSES}


def oldest_pending(engine: Engine) -> datetime | None:
    """When the oldest event still waiting for the relay happened (None: nothing waits)."""
    try:
        with engine.connect() as conn:
            found: datetime | None = conn.execute(
                select(func.min(outbox.c.occurred_at)).where(outbox.c.status == "pending")).scalar()
    except SQLAlchemyError as exc:
        raise classify_store_error(exc) from exc
    return found


def list_rows(engine: Engine, status: str, limit: int = 100) -> list[OutboxRow]:
    """The oldest ``limit`` rows in ``status``."""
    if status not in STATUSES:
        raise ConfigurationError(f"unknown outbox status {status!r} (one of {', '.join(STATUSES)})")
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(*COLUMNS).where(outbox.c.status == status)
                                .order_by(outbox.c.id).limit(limit)).all()
    except SQLAlchemyError as exc:
        raise classify_store_error(exc) from exc
    return [row_from(r) for r in rows]


def replay(engine: Engine, ids: Sequence[str] = (), *, all_dead: bool = False,
           all_unrouted: bool = False) -> int:
    """Make rows pending again (attempts reset); ``ids`` are row ids or event ids.

    A replayed event keeps its id, so consumers that already have it drop the copy. Rows that
    are pending already are left alone. Returns how many rows were made pending.
    """
    conditions = []
    if ids:
        numbers = [int(i) for i in ids if i.isdigit()]
        conditions.append(or_(outbox.c.id.in_(numbers), outbox.c.event_id.in_(list(ids))))
    if all_dead:
        conditions.append(outbox.c.status == "dead")
    if all_unrouted:
        conditions.append(outbox.c.status == "unrouted")
    if not conditions:
        raise ConfigurationError("outbox replay: name row ids or event ids, or --all-dead")
    statement = (update(outbox).where(or_(*conditions), outbox.c.status != "pending")
                 .values(status="pending", attempts=0, next_attempt_at=None, last_error=None,
                         sent_at=None))
    try:
        with engine.begin() as conn:
            return conn.execute(statement).rowcount
    except SQLAlchemyError as exc:
        raise classify_store_error(exc) from exc
