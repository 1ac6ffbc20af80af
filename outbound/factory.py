"""Building a relay from settings: the store for the database, the publisher for the broker."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from engine.broker import is_amqp_url
from engine.domain.clock import Clock
from outbound.amqp_publisher import AmqpStatusPublisher
from outbound.kombu_publisher import KombuStatusPublisher
from outbound.metered import MeteredPublisher, PublishCounts
from outbound.outbox_store import open_outbox_store
from outbound.ports import StatusPublisher
from outbound.relay import Relay, RelayPolicy

__all__ = ["build_relay", "open_publisher"]


def open_publisher(broker_url: str, *, window: int = 1000) -> StatusPublisher:
    """RabbitMQ with windowed confirms for ``amqp://``; kombu's producer for anything else."""
    if is_amqp_url(broker_url):
        return AmqpStatusPublisher(broker_url, window=window)
    return KombuStatusPublisher(broker_url)


def build_relay(database: Engine, broker_url: str, clock: Clock, source: str,
                policy: RelayPolicy | None = None, *, counts: PublishCounts | None = None,
                observe_lag: Callable[[float], None] | None = None) -> Relay:
    """A relay over ``database``'s outbox publishing to ``broker_url``; with ``counts``, its
    publishes and the broker's answers are counted there (and each confirm's lag observed)."""
    policy = policy or RelayPolicy()
    store = open_outbox_store(database)
    publisher = open_publisher(broker_url, window=max(policy.batch_size, 1))
    if counts is not None:
        publisher = MeteredPublisher(publisher, clock, counts, observe_lag or (lambda _s: None))
    return Relay(store, publisher, clock, source, policy,
                 claims_per_sweep=store.claims_per_sweep)
