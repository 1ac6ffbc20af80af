"""The relay's policy with in-memory doubles of its two ports (store and publisher)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from engine.broker import BrokerUnavailable
from outbound.ports import (
    Claim,
    Delivery,
    OutboxRow,
    OutboxStore,
    OutgoingMessage,
    PublishReport,
    RowFailure,
    StatusPublisher,
)
from outbound.relay import Relay, RelayPolicy
from tests.fakes import FixedClock

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def row(n: int, subject: str = "p1", key: str = "mpi.changed", data: str | None = None) -> OutboxRow:
    return OutboxRow(id=n, event_id=f"e{n}", routing_key=key, subject=subject, sequence=n,
                     correlation_id=f"c{n}", occurred_at=T0,
                     data=data or json.dumps({"patient_id": subject}))


class MemoryClaim(Claim):
    def __init__(self, rows: list[OutboxRow]) -> None:
        self.rows = rows
        self.outcome: tuple[Sequence[int], Sequence[int], Sequence[RowFailure]] | None = None

    def settle(self, sent: Sequence[int], unrouted: Sequence[int],
               failures: Sequence[RowFailure], at: datetime) -> None:
        self.outcome = (sent, unrouted, failures)


class MemoryStore(OutboxStore):
    """Rows by id; a claim's outcome is applied only when the claim closes normally."""

    def __init__(self, rows: list[OutboxRow]) -> None:
        self.rows = {r.id: r for r in rows}
        self.retry_at: dict[int, datetime] = {}

    @contextmanager
    def claim(self, limit: int, now: datetime) -> Iterator[Claim]:
        due = [r for _, r in sorted(self.rows.items()) if r.status == "pending"
               and self.retry_at.get(r.id, now) <= now][:limit]
        claim = MemoryClaim(due)
        yield claim
        if claim.outcome is None:
            return
        sent, unrouted, failures = claim.outcome
        for ids, status in ((sent, "sent"), (unrouted, "unrouted")):
            for i in ids:
                self.rows[i] = replace(self.rows[i], status=status)
        for failure in failures:
            current = self.rows[failure.row_id]
            self.rows[failure.row_id] = replace(
                current, attempts=current.attempts + 1, last_error=failure.error,
                status="dead" if failure.dead else "pending")
            self.retry_at[failure.row_id] = failure.retry_at

    def status(self) -> dict[int, str]:
        return {i: r.status for i, r in self.rows.items()}


class ScriptedPublisher(StatusPublisher):
    """Answers like a broker would, as scripted: refusals, missing routes, outages."""

    def __init__(self) -> None:
        self.refuse_alone: set[str] = set()  # event ids the broker refuses even alone
        self.refuse_in_batch: set[str] = set()  # event ids whose batch the broker refuses
        self.unbound: set[str] = set()  # routing keys no queue is bound for
        self.down = 0  # the next N calls find no broker
        self.lose_after: int | None = None  # the connection drops after N messages
        self.calls: list[list[str]] = []

    def publish(self, messages: Sequence[OutgoingMessage]) -> PublishReport:
        if self.down:
            self.down -= 1
            raise BrokerUnavailable("broker unavailable (ConnectionRefusedError)")
        self.calls.append([m.message_id for m in messages])
        batch_refused = any(m.message_id in self.refuse_in_batch for m in messages)
        results: list[Delivery] = []
        for index, message in enumerate(messages):
            if self.lose_after is not None and index >= self.lose_after:
                unknown = [Delivery.UNKNOWN] * (len(messages) - index)
                return PublishReport(results + unknown, failure=BrokerUnavailable("lost"))
            if message.message_id in self.refuse_alone or (batch_refused and len(messages) > 1):
                results.append(Delivery.REFUSED)
            elif message.routing_key in self.unbound:
                results.append(Delivery.UNROUTABLE)
            else:
                results.append(Delivery.CONFIRMED)
        reasons = {i: "nack" for i, r in enumerate(results) if r is Delivery.REFUSED}
        return PublishReport(results, reasons)


def relay(store: MemoryStore, publisher: ScriptedPublisher, clock: FixedClock | None = None,
          **policy: float) -> Relay:
    return Relay(store, publisher, clock or FixedClock(T0), "urn:test",
                 RelayPolicy(**policy))  # type: ignore[arg-type]


def test_confirmed_rows_are_sent_and_published_in_commit_order() -> None:
    store, publisher = MemoryStore([row(1), row(2, "p2"), row(3, "p3")]), ScriptedPublisher()
    assert relay(store, publisher).pump() == 3
    assert store.status() == {1: "sent", 2: "sent", 3: "sent"}
    assert publisher.calls == [["e1", "e2", "e3"]]  # one subject each: one confirm window


def test_a_subjects_next_event_is_published_only_after_the_one_before_was_confirmed() -> None:
    rows = [row(1), row(2, "p2"), row(3), row(4, "p2"), row(5), row(6, "p3")]
    store, publisher = MemoryStore(rows), ScriptedPublisher()
    assert relay(store, publisher).pump() == 6
    assert publisher.calls == [["e1", "e2", "e6"], ["e3", "e4"], ["e5"]]
    assert set(store.status().values()) == {"sent"}


def test_a_refused_event_holds_back_the_later_events_of_its_subject_in_the_same_claim() -> None:
    rows = [row(1), row(2, "p2"), row(3), row(4, "p2"), row(5)]
    store, publisher = MemoryStore(rows), ScriptedPublisher()
    publisher.refuse_alone = {"e1"}
    relay(store, publisher).pump()
    assert store.status() == {1: "pending", 2: "sent", 3: "pending", 4: "sent", 5: "pending"}
    assert [r.attempts for r in store.rows.values()] == [1, 0, 0, 0, 0]  # only e1 is charged
    assert ["e3"] not in publisher.calls and all("e5" not in call for call in publisher.calls)


def test_rows_with_no_queue_bound_are_unrouted_and_not_retried() -> None:
    store, publisher = MemoryStore([row(1), row(2, key="member.activated")]), ScriptedPublisher()
    publisher.unbound = {"member.activated"}
    the_relay = relay(store, publisher)
    the_relay.pump()
    assert store.status() == {1: "sent", 2: "unrouted"}
    assert the_relay.pump() == 0
    assert the_relay.stats.by_key == {"member.activated": 1}


def test_a_refused_batch_is_retried_row_by_row_so_only_the_culprit_is_charged() -> None:
    store, publisher = MemoryStore([row(1), row(2, "p2"), row(3, "p3")]), ScriptedPublisher()
    publisher.refuse_in_batch = {"e2"}
    publisher.refuse_alone = {"e2"}
    relay(store, publisher).pump()
    assert store.status() == {1: "sent", 2: "pending", 3: "sent"}
    assert [r.attempts for r in store.rows.values()] == [0, 1, 0]
    assert publisher.calls == [["e1", "e2", "e3"], ["e1"], ["e2"], ["e3"]]
    assert store.rows[2].last_error == "nack"


def test_a_refused_row_backs_off_exponentially_and_dies_after_max_attempts() -> None:
    store, publisher = MemoryStore([row(1)]), ScriptedPublisher()
    publisher.refuse_alone = {"e1"}
    clock = FixedClock(T0)
    the_relay = relay(store, publisher, clock, max_attempts=3, row_retry_initial=2.0)
    the_relay.pump()
    assert store.retry_at[1] == T0 + timedelta(seconds=2)
    assert the_relay.pump() == 0  # not due yet
    clock.advance(seconds=2)
    the_relay.pump()
    assert store.retry_at[1] == T0 + timedelta(seconds=2 + 4)
    clock.advance(seconds=4)
    the_relay.pump()
    assert store.rows[1].status == "dead" and store.rows[1].attempts == 3
    assert the_relay.stats.dead == 1


def test_broker_down_leaves_every_row_pending_and_uncharged() -> None:
    store, publisher = MemoryStore([row(1), row(2)]), ScriptedPublisher()
    publisher.down = 1
    with pytest.raises(BrokerUnavailable):
        relay(store, publisher).pump()
    assert store.status() == {1: "pending", 2: "pending"}
    assert all(r.attempts == 0 for r in store.rows.values())


def test_connection_lost_midway_keeps_what_was_confirmed_and_the_rest_pending() -> None:
    store, publisher = MemoryStore([row(1), row(2, "p2"), row(3, "p3"), row(4)]), ScriptedPublisher()
    publisher.lose_after = 2
    with pytest.raises(BrokerUnavailable):
        relay(store, publisher).pump()
    assert store.status() == {1: "sent", 2: "sent", 3: "pending", 4: "pending"}
    assert store.rows[3].attempts == 0 and store.rows[4].attempts == 0
    assert publisher.calls == [["e1", "e2", "e3"]]  # p1's second round never started


def test_a_row_whose_data_is_not_json_is_charged_without_being_published() -> None:
    store, publisher = MemoryStore([row(1, data="not json"), row(2, "p2")]), ScriptedPublisher()
    relay(store, publisher, max_attempts=1).pump()
    assert store.status() == {1: "dead", 2: "sent"}
    assert publisher.calls == [["e2"]]


def test_an_unreadable_row_holds_back_the_later_events_of_its_subject() -> None:
    store = MemoryStore([row(1), row(2, data="not json"), row(3), row(4, "p2")])
    publisher = ScriptedPublisher()
    relay(store, publisher).pump()
    assert store.status() == {1: "sent", 2: "pending", 3: "pending", 4: "sent"}
    assert publisher.calls == [["e1", "e4"]]


def test_run_backs_off_while_the_broker_is_down_and_resumes_by_itself() -> None:
    store, publisher = MemoryStore([row(1), row(2)]), ScriptedPublisher()
    publisher.down = 3
    the_relay = relay(store, publisher, backoff_initial=0.01, backoff_max=0.02,
                      poll_interval=0.01)
    stop = threading.Event()
    worker = threading.Thread(target=the_relay.run, args=(stop,))
    worker.start()
    try:
        for _ in range(500):
            if store.status() == {1: "sent", 2: "sent"}:
                break
            stop.wait(0.01)
    finally:
        stop.set()
        worker.join(5)
    assert store.status() == {1: "sent", 2: "sent"}
    assert the_relay.stats.outages == 1
    assert not worker.is_alive()
