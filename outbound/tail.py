# mypy: disable-error-code="no-untyped-call"
# (kombu annotates only part of its API; its calls are checked by the tests instead)
"""``portalbridge events tail``: print status events as they are published, one JSON a line.

With RabbitMQ the tail binds its own exclusive, auto-deleted queue to the status exchange
and prints what arrives. The embedded broker lives inside the ``serve`` process, which
another process cannot reach; there the tail follows the outbox instead and prints each row
the relay marked published, rebuilt into exactly the CloudEvent that was published.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from kombu.entity import Exchange, Queue
from kombu.message import Message
from kombu.messaging import Consumer
from sqlalchemy import Engine, func, select

from engine.broker import STATUS_EXCHANGE, broker_errors, is_amqp_url, open_connection
from engine.enrollment_requests import ENROLLMENT_REQUEST_KEY
from engine.store.tables import outbox
from outbound.outbox_store import COLUMNS, row_from
from outbound.status_events import body_text

__all__ = ["follow_outbox", "subscribe", "tail_events"]

Write = Callable[[str], None]
PUBLISHED = ("sent", "unrouted")
_PAGE = 1000


class _Counter:
    def __init__(self, write: Write, count: int | None, stop: threading.Event) -> None:
        self._write, self._left, self._stop = write, count, stop

    def __call__(self, line: str) -> None:
        if self._stop.is_set():
            return
        self._write(line)
        if self._left is not None:
            self._left -= 1
            if self._left <= 0:
                self._stop.set()


#: Status events only: enrollment requests share the outbox but are commands for a queue.
_EVENTS = outbox.c.routing_key != ENROLLMENT_REQUEST_KEY


def follow_outbox(engine: Engine, source: str, write: Write, stop: threading.Event, *,
                  last: int = 10, count: int | None = None, poll: float = 0.5) -> None:
    """Print the ``last`` published events, then every newly published one until ``stop``.

    Rows are followed by id: rows above the highest id seen are new; rows seen while still
    pending are looked at again until the relay published them (or they died).
    """
    emit = _Counter(write, count, stop)
    with engine.connect() as conn:
        high = conn.execute(select(func.max(outbox.c.id))).scalar() or 0
        recent = conn.execute(select(*COLUMNS).where(outbox.c.status.in_(PUBLISHED), _EVENTS)
                              .order_by(outbox.c.id.desc()).limit(last)).all() if last else []
        waiting = set(conn.execute(select(outbox.c.id).where(
            outbox.c.status == "pending", outbox.c.id <= high)).scalars())
    for row in reversed(recent):
        emit(body_text(row_from(row), source))
    while not stop.is_set():
        high = _poll(engine, source, emit, high, waiting)
        stop.wait(poll)


def _poll(engine: Engine, source: str, emit: Write, high: int, waiting: set[int]) -> int:
    with engine.connect() as conn:
        rows = list(conn.execute(select(*COLUMNS).where(outbox.c.id > high, _EVENTS)
                                 .order_by(outbox.c.id).limit(_PAGE)))
        if waiting:
            again = sorted(waiting)[:_PAGE]
            rows = list(conn.execute(select(*COLUMNS).where(outbox.c.id.in_(again)))) + rows
    for raw in rows:
        row = row_from(raw)
        high = max(high, row.id)
        if row.status in PUBLISHED:
            waiting.discard(row.id)
            emit(body_text(row, source))
        elif row.status == "pending":
            waiting.add(row.id)
        else:
            waiting.discard(row.id)  # dead: never published (a later replay is not followed)
    return high


def subscribe(url: str, write: Write, stop: threading.Event, *, count: int | None = None,
              binding: str = "#", on_ready: Callable[[], None] | None = None) -> None:
    """Print events from a temporary queue bound to the status exchange until ``stop``."""
    emit = _Counter(write, count, stop)

    def on_message(message: Message) -> None:
        emit(message.body.decode("utf-8", errors="replace"))

    connection = open_connection(url, heartbeat=30)
    try:
        with broker_errors():
            exchange = Exchange(STATUS_EXCHANGE, type="topic", durable=True)
            queue = Queue("", exchange=exchange, routing_key=binding, exclusive=True,
                          auto_delete=True, durable=False)
            with Consumer(connection.channel(), [queue], on_message=on_message, no_ack=True):
                if on_ready is not None:
                    on_ready()
                while not stop.is_set():
                    try:
                        connection.drain_events(timeout=0.5)
                    except TimeoutError:
                        connection.heartbeat_check()
    finally:
        connection.release()


def tail_events(database: Engine, broker_url: str, source: str, write: Write,
                stop: threading.Event, *, last: int = 10, count: int | None = None) -> None:
    """``events tail``: subscribe on RabbitMQ; follow the outbox for the embedded broker."""
    if is_amqp_url(broker_url):
        subscribe(broker_url, write, stop, count=count)
    else:
        follow_outbox(database, source, write, stop, last=last, count=count)
