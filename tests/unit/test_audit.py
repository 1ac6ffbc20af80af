"""Audit entries, the ``since`` rule, and the audit trail of a unit of work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.audit import AuditEntry, AuditRecord, matches_filter, parse_since
from engine.domain.durations import parse_duration
from tests.fakes import FixedClock, InMemoryAuditTrail, InMemoryUnitOfWork

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def entry(**values: object) -> AuditEntry:
    fields: dict[str, object] = {"actor": "staff:maria", "action": "member.deactivate",
                                 "outcome": "success"}
    fields.update(values)
    return AuditEntry(**fields)  # type: ignore[arg-type]


def test_an_entry_is_frozen_down_to_its_detail() -> None:
    detail = {"staff_id": "s1"}
    made = entry(detail=detail, reason="asked by the patient", member_id="m1")
    detail["staff_id"] = "changed"
    assert made.detail == {"staff_id": "s1"}
    with pytest.raises(TypeError):
        made.detail["x"] = "y"  # type: ignore[index]
    assert (made.reason, made.member_id, made.patient_id, made.at) == (
        "asked by the patient", "m1", None, None)


@pytest.mark.parametrize(("values", "message"), [
    ({"actor": ""}, "needs its actor"),
    ({"action": ""}, "needs its action"),
    ({"outcome": ""}, "needs its outcome"),
    ({"action": "x" * 65}, "action is longer than 64"),
    ({"reason": "r" * 2001}, "reason is longer than 2000"),
    ({"member_id": "m" * 65}, "member_id is longer than 64"),
    ({"detail": {"count": 3}}, "strings to strings"),
    ({"at": datetime(2026, 1, 1)}, "timezone-aware"),
])
def test_bad_entries_are_refused_when_made(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        entry(**values)


def test_a_record_as_json() -> None:
    record = AuditRecord(7, entry(at=NOW, patient_id="p1", detail={"by": "name"}))
    assert record.at == NOW
    assert record.to_dict() == {
        "id": 7, "at": "2026-03-01T12:00:00+00:00", "actor": "staff:maria",
        "action": "member.deactivate", "outcome": "success", "reason": "", "member_id": None,
        "patient_id": "p1", "detail": {"by": "name"}}


@pytest.mark.parametrize(("text", "expected"), [
    ("30s", NOW - timedelta(seconds=30)), ("5m", NOW - timedelta(minutes=5)),
    ("1h", NOW - timedelta(hours=1)), ("7d", NOW - timedelta(days=7)), (" 72H ", NOW - timedelta(hours=72)),
    ("2026-02-27T08:30:00Z", datetime(2026, 2, 27, 8, 30, tzinfo=UTC)),
    ("2026-02-27T08:30:00+01:00", datetime(2026, 2, 27, 7, 30, tzinfo=UTC)),
    ("2026-02-27", datetime(2026, 2, 27, tzinfo=UTC)),  # no offset: UTC
])
def test_since_is_a_duration_back_or_an_iso_time(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "1w", "h", "-1h", "1.5h", "yesterday", "2026-13-01"])
def test_since_says_what_it_expects(text: str) -> None:
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since(text, NOW)


def test_an_absurd_duration_is_a_value_error() -> None:
    assert parse_duration("999999999d") == timedelta(days=999_999_999)
    with pytest.raises(ValueError, match="before the year 1"):
        parse_since("999999999d", NOW)
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("1000000000d", NOW)


@pytest.mark.parametrize(("value", "wanted", "matches"), [
    ("staff.add", "staff.add", True), ("staff.add", "staff.ad", False),
    ("staff.add", "staff.*", True), ("member.add", "staff.*", False),
    ("cli:root", "*", True), ("staff.*", "staff.*", True), ("staff_x", "staff.*", False),
])
def test_actor_and_action_filters_match_exactly_or_by_prefix(value: str, wanted: str,
                                                            matches: bool) -> None:
    assert matches_filter(value, wanted) is matches


def test_the_unit_of_work_keeps_audit_entries_only_when_it_commits() -> None:
    trail = InMemoryAuditTrail(FixedClock(NOW))
    with InMemoryUnitOfWork(audit=trail) as uow:
        uow.audit.add(entry(action="rolled.back"))
    assert trail.committed == []
    with InMemoryUnitOfWork(audit=trail) as uow:
        uow.audit.add(entry(action="kept"))
        uow.commit()
    assert [(e.action, e.at) for e in trail.committed] == [("kept", NOW)]
