"""The metrics a runtime reads when scraped: committer counters, journal backlog, MLLP
connections, outbox rows and relay counts (see ``engine.metrics`` for those counted live).

The sources are passed in as small callables, so this module needs neither the edges nor
a database: the composition root wires them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from prometheus_client.metrics_core import Metric

from engine.committer import CommitStats
from engine.domain.clock import Clock
from engine.journal_writer import JournalWriter
from engine.metrics import EngineMetrics, counter, gauge

__all__ = ["MllpCounts", "RuntimeSources", "watch_runtime"]


class MllpCounts(Protocol):
    """What a running MLLP listener tells ``/metrics`` (``inbound.mllp_server.MllpServer``)."""

    @property
    def connections(self) -> Sized: ...

    @property
    def refused_connections(self) -> int: ...

    @property
    def buffered_bytes(self) -> int: ...


@dataclass(slots=True, kw_only=True)
class RuntimeSources:
    """Where the scraped values come from; a source left None is not reported."""

    clock: Clock
    commits: CommitStats
    journal: JournalWriter
    outbox_counts: Callable[[], dict[str, int]]
    oldest_pending: Callable[[], datetime | None]
    mllp: MllpCounts | None = None
    relay_counts: Callable[[], dict[str, int]] | None = None
    notification_counts: Callable[[], dict[str, int]] | None = None  # by delivery state
    notifier_counts: Callable[[], dict[str, int]] | None = None  # sent, failed, dead


def watch_runtime(metrics: EngineMetrics, sources: RuntimeSources) -> None:
    """Register every scrape-time family of one runtime on its registry."""
    metrics.watch("committer", lambda: _committer(sources))
    metrics.watch("outbox", lambda: _outbox(sources))
    metrics.watch("listeners and relay", lambda: _edges(sources))
    metrics.watch("notifications", lambda: _notifications(sources))


def _committer(sources: RuntimeSources) -> Iterator[Metric]:
    stats = sources.commits
    yield counter("portalbridge_commits", "Group commits", stats.commits)
    yield counter("portalbridge_messages_committed", "Messages committed", stats.messages)
    yield counter("portalbridge_commit_failures", "Messages not applied for a transient "
                  "reason (answered AE, 503)", stats.failures)
    yield counter("portalbridge_writer_busy_seconds", "Time the writer spent applying and "
                  "committing", stats.busy_seconds)
    yield gauge("portalbridge_largest_commit_batch", "Most messages in one group commit so far",
                stats.largest_batch)
    yield gauge("portalbridge_journal_deferred_entries", "Journal entries waiting for a commit",
                sources.journal.waiting)
    yield counter("portalbridge_journal_dropped_entries", "Journal entries dropped while the "
                  "database could not take them", sources.journal.dropped)


def _outbox(sources: RuntimeSources) -> Iterator[Metric]:
    counts = {status: float(n) for status, n in sources.outbox_counts().items()}
    yield gauge("portalbridge_outbox_rows", "Outbox rows by status", counts, "status")
    oldest = sources.oldest_pending()
    age = (sources.clock.now() - oldest).total_seconds() if oldest is not None else 0.0
    yield gauge("portalbridge_outbox_oldest_pending_seconds", "Age of the oldest event waiting "
                "for the relay (0 when none waits)", max(age, 0.0))


def _edges(sources: RuntimeSources) -> Iterator[Metric]:
    mllp = sources.mllp
    if mllp is not None:
        yield gauge("portalbridge_mllp_connections", "Open MLLP connections", len(mllp.connections))
        yield counter("portalbridge_mllp_refused_connections", "MLLP connections refused at "
                      "PORTALBRIDGE_MLLP_MAX_CONNECTIONS", mllp.refused_connections)
        yield gauge("portalbridge_mllp_buffered_bytes", "Bytes the MLLP listener holds for its "
                    "clients", mllp.buffered_bytes)
    if sources.relay_counts is not None:
        counts = {name: float(value) for name, value in sources.relay_counts().items()}
        yield counter("portalbridge_relay_published", "Events the relay published",
                      counts.pop("published"))
        yield counter("portalbridge_relay_results", "Broker answers to published events: "
                      "confirmed, unroutable (confirmed, no queue bound), refused, unanswered "
                      "(connection lost)", counts, "result")


def _notifications(sources: RuntimeSources) -> Iterator[Metric]:
    if sources.notification_counts is not None:
        counts = {state: float(n) for state, n in sources.notification_counts().items()}
        yield gauge("portalbridge_notifications", "Notifications by delivery state: queued, "
                    "failed (will be retried), sent, dead, bounced", counts, "delivery")
    if sources.notifier_counts is not None:
        done = {name: float(n) for name, n in sources.notifier_counts().items()}
        yield counter("portalbridge_notifier_attempts", "Delivery attempts of this process's "
                      "notifier by result: sent, failed (of which dead: no more attempts)",
                      done, "result")
