"""Metrics with prometheus_client on a registry per runtime."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from engine.journal import JournalEntry
from engine.metrics import EngineMetrics, counter, gauge


def samples(metrics: EngineMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def entry(channel: str, outcome: str, code: str = "") -> JournalEntry:
    return JournalEntry(channel=channel, sender="s", control_id="c", message_type="t",
                        received_at=datetime(2026, 1, 1, tzinfo=UTC), outcome=outcome,
                        error_code=code)


def test_messages_are_counted_by_channel_and_code_and_refusals_by_reason() -> None:
    metrics = EngineMetrics()
    for e in (entry("mllp", "AA"), entry("mllp", "AA"), entry("mllp", "AR", "200"),
              entry("fhir", "422", "business-rule"), entry("amqp", "AE", "207")):
        metrics.observe_entry(e)
    found = samples(metrics)
    assert found[("portalbridge_inbound_messages_total", (("channel", "mllp"), ("code", "AA")))] == 2
    assert found[("portalbridge_refusals_total", (("channel", "mllp"), ("reason", "200")))] == 1
    assert found[("portalbridge_refusals_total", (("channel", "fhir"), ("reason", "business-rule")))] == 1
    assert not any(name == "portalbridge_refusals_total" and ("channel", "amqp") in labels
                   for name, labels in found)  # AE is not a refusal: resend later


def test_commit_groups_and_relay_lag_are_histograms() -> None:
    metrics = EngineMetrics()
    for size, seconds in ((1, 0.001), (8, 0.004), (100, 0.03)):
        metrics.observe_commit(size, seconds)
    metrics.observe_relay_lag(0.2)
    found = samples(metrics)
    assert found[("portalbridge_commit_group_size_count", ())] == 3
    assert found[("portalbridge_commit_group_size_sum", ())] == 109
    assert found[("portalbridge_commit_group_size_bucket", (("le", "8.0"),))] == 2
    assert found[("portalbridge_commit_duration_seconds_bucket", (("le", "0.005"),))] == 2
    assert found[("portalbridge_relay_lag_seconds_bucket", (("le", "0.25"),))] == 1


def test_each_runtime_has_its_own_registry_and_watched_values_are_read_when_scraped() -> None:
    first, second = EngineMetrics(), EngineMetrics()
    first.observe_entry(entry("mllp", "AA"))
    value = {"rows": 1.0}
    second.watch("test", lambda: [gauge("portalbridge_test_rows", "rows", value["rows"]),
                                  counter("portalbridge_test_things", "things", {"a": 1.0}, "kind")])
    value["rows"] = 7.0
    found = samples(second)
    assert found[("portalbridge_test_rows", ())] == 7.0
    assert found[("portalbridge_test_things_total", (("kind", "a"),))] == 1.0
    assert not any(name.startswith("portalbridge_inbound") and labels for name, labels in found)


def test_a_failing_source_is_left_out_and_the_rest_is_served() -> None:
    metrics = EngineMetrics()

    def broken() -> list[object]:
        raise RuntimeError("database away")
    metrics.watch("broken", broken)  # type: ignore[arg-type]
    metrics.observe_commit(1, 0.001)
    assert ("portalbridge_commit_group_size_count", ()) in samples(metrics)
