"""Metrics of one runtime for ``/metrics``, with ``prometheus_client`` on a registry of its own.

A registry per runtime, never the library's global one: tests (and the demo) run several
runtimes in one process, and nothing may be registered at import time.

Counted as things happen (cheap: a dictionary lookup and an add under a lock):

- ``portalbridge_inbound_messages_total{channel, code}``: every message answered, by channel
  (``mllp``, ``amqp``, ``fhir``) and ACK code or HTTP status; counted from the journal's
  entries, so it holds with the journal disabled too;
- ``portalbridge_refusals_total{channel, reason}``: refused messages (AR, HTTP 4xx) by
  reason code (HL7 table 0357, or the FHIR issue code);
- ``portalbridge_commit_group_size`` and ``portalbridge_commit_duration_seconds``:
  histograms of the group commits;
- ``portalbridge_relay_lag_seconds``: from an event's commit to the broker's confirm.

Read when scraped (``watch``): the committer's counters, the journal's backlog, the MLLP
connections, the outbox rows by status and the relay's publish and confirm counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from engine.journal import JournalEntry, is_refusal

__all__ = ["CONTENT_TYPE", "EngineMetrics", "counter", "gauge", "serve_metrics"]

log = logging.getLogger(__name__)

#: The Prometheus text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_GROUP_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_COMMIT_SECONDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_LAG_SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

Families = Callable[[], Iterable[Metric]]


class _Watched(Collector):
    """Metric families computed when scraped; a failing source is left out, not fatal."""

    def __init__(self, name: str, families: Families) -> None:
        self._name = name
        self._families = families

    def collect(self) -> Iterator[Metric]:
        try:
            yield from list(self._families())
        except Exception as exc:  # noqa: BLE001 - one broken source must not empty /metrics
            log.warning("metrics: %s left out of this scrape: %s", self._name,
                        getattr(exc, "reason", type(exc).__name__))


class EngineMetrics:
    """The registry of one runtime and the metrics counted as messages go through."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._inbound = Counter("portalbridge_inbound_messages", "Inbound messages answered, by "
                                "channel and ACK code or HTTP status", ["channel", "code"],
                                registry=self.registry)
        self._refusals = Counter("portalbridge_refusals", "Inbound messages refused (AR, HTTP "
                                 "4xx), by channel and reason code", ["channel", "reason"],
                                 registry=self.registry)
        self._group_size = Histogram("portalbridge_commit_group_size", "Messages per group "
                                     "commit", buckets=_GROUP_SIZES, registry=self.registry)
        self._commit_seconds = Histogram("portalbridge_commit_duration_seconds", "Time to apply "
                                         "and commit one group", buckets=_COMMIT_SECONDS,
                                         registry=self.registry)
        self._relay_lag = Histogram("portalbridge_relay_lag_seconds", "Time from an event's "
                                    "commit to the broker's confirm", buckets=_LAG_SECONDS,
                                    registry=self.registry)

    def observe_entry(self, entry: JournalEntry) -> None:
        """Count one answered message (the journal writer calls this for every entry)."""
        self._inbound.labels(entry.channel, entry.outcome).inc()
        if is_refusal(entry.outcome):
            self._refusals.labels(entry.channel, entry.error_code or "unknown").inc()

    def observe_commit(self, size: int, seconds: float) -> None:
        self._group_size.observe(size)
        self._commit_seconds.observe(seconds)

    def observe_relay_lag(self, seconds: float) -> None:
        self._relay_lag.observe(max(seconds, 0.0))

    def watch(self, name: str, families: Families) -> None:
        """Add metric families computed at each scrape by ``families``."""
        self.registry.register(_Watched(name, families))

    def exposition(self) -> bytes:
        """Everything, in the Prometheus text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)


def serve_metrics(metrics: EngineMetrics, host: str, port: int) -> tuple[int, Callable[[], None]]:
    """``/metrics`` of ``metrics`` on its own HTTP server (a thread of prometheus_client's):
    the bound port, and the function that stops it. Raises ``OSError`` when it cannot bind."""
    server, thread = start_http_server(port, host, registry=metrics.registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return int(server.server_address[1]), stop


def counter(name: str, documentation: str, values: dict[str, float] | float,
            label: str = "") -> CounterMetricFamily:
    """A counter family for ``watch`` (``name`` without ``_total``: the library adds it):
    one value, or one per value of ``label``."""
    return _family(CounterMetricFamily, name, documentation, values, label)


def gauge(name: str, documentation: str, values: dict[str, float] | float,
          label: str = "") -> GaugeMetricFamily:
    """A gauge family for ``watch``: one value, or one per value of ``label``."""
    return _family(GaugeMetricFamily, name, documentation, values, label)


_F = TypeVar("_F", CounterMetricFamily, GaugeMetricFamily)


def _family(kind: type[_F], name: str, documentation: str, values: dict[str, float] | float,
            label: str) -> _F:
    if not isinstance(values, dict):
        return kind(name, documentation, value=values)
    family = kind(name, documentation, labels=[label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family
