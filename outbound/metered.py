"""A status publisher that counts: what the relay published, what the broker confirmed, how late.

It wraps the real publisher, so the relay's policy stays where it is; ``/metrics`` reads
``PublishCounts`` when scraped, and each confirm's lag (from the event's commit to the
broker's answer) goes to ``observe_lag``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.domain.clock import Clock
from outbound.ports import Delivery, OutgoingMessage, PublishReport, StatusPublisher

__all__ = ["MeteredPublisher", "PublishCounts"]


@dataclass(slots=True)
class PublishCounts:
    """Events handed to the broker, and what it said about them."""

    published: int = 0
    confirmed: int = 0  # taken by a queue
    unroutable: int = 0  # confirmed, but no queue was bound for the routing key
    refused: int = 0
    unanswered: int = 0  # the connection was lost before the broker answered


_FIELD = {Delivery.CONFIRMED: "confirmed", Delivery.UNROUTABLE: "unroutable",
          Delivery.REFUSED: "refused", Delivery.UNKNOWN: "unanswered"}


class MeteredPublisher(StatusPublisher):
    """``inner`` with its publishes and their results counted."""

    def __init__(self, inner: StatusPublisher, clock: Clock, counts: PublishCounts,
                 observe_lag: Callable[[float], None]) -> None:
        self._inner = inner
        self._clock = clock
        self.counts = counts
        self._observe_lag = observe_lag

    def publish(self, messages: Sequence[OutgoingMessage]) -> PublishReport:
        report = self._inner.publish(messages)
        counts, now = self.counts, self._clock.now()
        for message, result in zip(messages, report.results, strict=False):
            if result in (Delivery.CONFIRMED, Delivery.UNROUTABLE):
                self._observe_lag((now - message.timestamp).total_seconds())
            name = _FIELD[result]
            setattr(counts, name, getattr(counts, name) + 1)
        counts.published += len(messages)
        return report

    def open(self) -> None:
        self._inner.open()

    def close(self) -> None:
        self._inner.close()
