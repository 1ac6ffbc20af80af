"""The outbox relay: committed outbox rows -> status events on the broker, marked sent only
after the broker confirmed them.

Policy, in the words of the tests:

* a row is marked ``sent`` only after its publisher confirm; ``unrouted`` when the broker
  confirmed it but no queue was bound for it (a mandatory return: nobody subscribes to that
  event type yet; kept, listed and replayable, never retried by itself);
* a row the broker refused is charged one attempt and retried after a capped exponential
  delay; later rows of the same subject wait behind it, those of the same claim too (a
  claim is published in rounds, the k-th event of every subject in round k, so a subject's
  next event leaves only once the broker confirmed the one before); after ``max_attempts``
  it is ``dead`` (``portalbridge outbox list --dead`` / ``outbox replay``);
* when several rows of one claim are refused, each is retried alone at once, so a row never
  pays an attempt for a neighbour that broke the channel;
* when the broker or the database is unavailable nothing is charged: the rows stay pending
  and the relay backs off (tenacity, capped exponential) and resumes by itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_when_event_set,
    wait_exponential,
)

from engine.domain.clock import Clock
from engine.errors import TransientFailure
from outbound.ports import (
    Delivery,
    OutboxRow,
    OutboxStore,
    OutgoingMessage,
    PublishReport,
    RowFailure,
    StatusPublisher,
)
from outbound.status_events import UnreadableRow, to_message

__all__ = ["Relay", "RelayPolicy", "RelayStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayPolicy:
    """How much to claim at once, how long to wait, when to give a row up."""

    batch_size: int = 500
    max_attempts: int = 8
    poll_interval: float = 0.2  # idle wait once every partition came back empty
    backoff_initial: float = 0.5  # broker or database unavailable: first wait ...
    backoff_max: float = 30.0  # ... doubling up to this
    row_retry_initial: float = 1.0  # a refused row: first wait ...
    row_retry_max: float = 300.0  # ... doubling up to this


@dataclass(slots=True)
class RelayStats:
    """Counters for /metrics and the benchmark."""

    sent: int = 0
    unrouted: int = 0
    refused: int = 0
    dead: int = 0
    claims: int = 0
    outages: int = 0
    by_key: dict[str, int] = field(default_factory=dict)


class Relay:
    """Moves outbox rows to the broker; one instance per relay thread."""

    def __init__(self, store: OutboxStore, publisher: StatusPublisher, clock: Clock,
                 source: str, policy: RelayPolicy | None = None, *,
                 claims_per_sweep: int = 1) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._source = source
        self.policy = policy or RelayPolicy()
        self._claims_per_sweep = claims_per_sweep
        self.stats = RelayStats()
        self._told_unrouted: set[str] = set()

    # -- one claim ----------------------------------------------------------------------

    def pump(self) -> int:
        """Claim, publish and settle one batch; the number of rows claimed.

        Raises ``TransientFailure`` when the broker or the database is unavailable, after
        recording what the broker did confirm.
        """
        now = self._clock.now()
        with self._store.claim(self.policy.batch_size, now) as claim:
            rows = claim.rows
            if not rows:
                return 0
            self.stats.claims += 1
            messages, failures = self._messages(rows, now)
            report = self._publish_in_order(rows, messages)
            sent, unrouted, refused = self._sort(rows, report, now)
            claim.settle(sent, unrouted, [*failures, *refused], now)
        if report.failure is not None:
            raise report.failure
        return len(rows)

    def _messages(self, rows: list[OutboxRow],
                  now: datetime) -> tuple[list[OutgoingMessage | None], list[RowFailure]]:
        """Each row's message, or None (and a failure charged) for a row that is unreadable."""
        messages: list[OutgoingMessage | None] = []
        failures: list[RowFailure] = []
        for row in rows:
            try:
                messages.append(to_message(row, self._source))
            except UnreadableRow as exc:
                messages.append(None)
                failures.append(self._failure(row, str(exc), now))
        return messages, failures

    def _publish_in_order(self, rows: list[OutboxRow],
                          messages: list[OutgoingMessage | None]) -> PublishReport:
        """Publish in rounds, round k holding the k-th row of every subject, and leave out the
        rest of a subject once one of its rows was not delivered: nothing overtakes it."""
        report = PublishReport(results=[Delivery.UNKNOWN] * len(rows))
        held: set[str] = set()
        for round_rows in _rounds(rows):
            held.update(rows[i].subject for i in round_rows if messages[i] is None)
            batch = [i for i in round_rows if messages[i] is not None and rows[i].subject not in held]
            if not batch:
                continue
            answer = self._publish([m for i in batch if (m := messages[i]) is not None])
            for position, index in enumerate(batch):
                report.results[index] = answer.results[position]
                if position in answer.reasons:
                    report.reasons[index] = answer.reasons[position]
                if answer.results[position] not in _DELIVERED:
                    held.add(rows[index].subject)
            if answer.failure is not None:
                report.failure = answer.failure
                break
        return report

    def _publish(self, messages: list[OutgoingMessage]) -> PublishReport:
        report = self._publisher.publish(messages)
        if len(messages) > 1 and report.failure is None and Delivery.REFUSED in report.results:
            self._isolate(messages, report)
        return report

    def _isolate(self, messages: Sequence[OutgoingMessage], report: PublishReport) -> None:
        """Publish each refused message alone, so only the one the broker refuses is charged."""
        for index, result in enumerate(report.results):
            if result is not Delivery.REFUSED:
                continue
            if report.failure is not None:
                report.results[index] = Delivery.UNKNOWN
                continue
            try:
                alone = self._publisher.publish([messages[index]])
            except TransientFailure as exc:
                alone = PublishReport(results=[Delivery.UNKNOWN], failure=exc)
            report.results[index] = alone.results[0]
            report.reasons[index] = alone.reasons.get(0, report.reasons.get(index, ""))
            report.failure = alone.failure

    def _sort(self, rows: list[OutboxRow], report: PublishReport,
              now: datetime) -> tuple[list[int], list[int], list[RowFailure]]:
        sent: list[int] = []
        unrouted: list[int] = []
        refused: list[RowFailure] = []
        for index, (row, result) in enumerate(zip(rows, report.results, strict=True)):
            if result is Delivery.CONFIRMED:
                sent.append(row.id)
            elif result is Delivery.UNROUTABLE:
                unrouted.append(row.id)
                self._unrouted(row.routing_key)
            elif result is Delivery.REFUSED:
                refused.append(self._failure(row, report.reasons.get(index, "refused"), now))
        self.stats.sent += len(sent)
        self.stats.unrouted += len(unrouted)
        return sent, unrouted, refused

    def _unrouted(self, routing_key: str) -> None:
        self.stats.by_key[routing_key] = self.stats.by_key.get(routing_key, 0) + 1
        if routing_key not in self._told_unrouted:  # once per key: the embedded broker has none
            self._told_unrouted.add(routing_key)
            log.info("relay: no queue is bound for %s: its events are confirmed and kept as "
                     "'unrouted' (`portalbridge outbox replay --all-unrouted` sends them again)",
                     routing_key)

    def _failure(self, row: OutboxRow, error: str, now: datetime) -> RowFailure:
        attempts = row.attempts + 1
        delay = min(self.policy.row_retry_max,
                    self.policy.row_retry_initial * 2 ** (attempts - 1))
        dead = attempts >= self.policy.max_attempts
        self.stats.refused += 1
        self.stats.dead += dead
        log.warning("relay: event %s (%s) refused, attempt %d of %d%s: %s", row.event_id,
                    row.routing_key, attempts, self.policy.max_attempts,
                    " - now dead" if dead else "", error)
        return RowFailure(row.id, error[:2000], now + timedelta(seconds=delay), dead)

    # -- the loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event, on_cycle: Callable[[], None] | None = None) -> None:
        """Pump until ``stop`` is set: back off while the broker or database is away."""
        empty = 0
        try:
            self._retrying(stop)(self._publisher.open)  # declares the topology at start
            while not stop.is_set():
                if on_cycle is not None:
                    on_cycle()
                claimed = self._retrying(stop)(self.pump)
                empty = 0 if claimed else empty + 1
                if empty >= self._claims_per_sweep:
                    empty = 0
                    stop.wait(self.policy.poll_interval)
        except TransientFailure:
            pass  # stopped while backing off
        finally:
            self._publisher.close()

    def _retrying(self, stop: threading.Event) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(TransientFailure),
            wait=wait_exponential(multiplier=self.policy.backoff_initial,
                                  max=self.policy.backoff_max),
            stop=stop_when_event_set(stop),
            sleep=lambda seconds: _wait(stop, seconds),
            before_sleep=self._backing_off,
            reraise=True,
        )

    def _backing_off(self, state: RetryCallState) -> None:
        self.stats.outages += state.attempt_number == 1
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("relay: %s; rows kept, retrying in %.1f s (try %d)",
                    getattr(error, "reason", error), wait, state.attempt_number)


#: Results after which a subject's next event may follow (the broker took this one).
_DELIVERED = frozenset({Delivery.CONFIRMED, Delivery.UNROUTABLE})


def _rounds(rows: list[OutboxRow]) -> list[list[int]]:
    """Row indexes by round: round k holds the k-th row of each subject, in claim order. A
    claim of many subjects with one event each is one round, one confirm window."""
    rounds: list[list[int]] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        number = seen.get(row.subject, 0)
        seen[row.subject] = number + 1
        if number == len(rounds):
            rounds.append([])
        rounds[number].append(index)
    return rounds


def _wait(stop: threading.Event, seconds: float) -> None:
    stop.wait(seconds)  # returns early when the relay is told to stop
