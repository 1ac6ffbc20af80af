"""Membership through the message bus with fakes: every effect in the same unit of work."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from jsonschema import Draft202012Validator

from engine.commands import MessageOrigin
from engine.errors import AlreadyMember, Conflict, NotFound, PolicyRefused
from engine.member_commands import Actor, ChangeMembershipStatus, ManageToken
from engine.rules import parse_rules
from membership.policies import EnrollmentMode
from tests.unit.membership.member_bus import MemberBus

STAFF = Actor(type="staff", id="s-1", name="Pat Staff")


def _origin(n: str) -> MessageOrigin:
    return MessageOrigin(channel="http", sender="workbench", control_id=n, message_type="x", facility="")


def _schema(key: str) -> Draft202012Validator:
    text = (resources.files("engine") / "schemas" / f"{key}.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text))


def _validate_events(bus: MemberBus) -> None:
    """Every member event the handlers emitted validates against its generated schema."""
    for message in bus.uow.outbox.committed:
        if message.routing_key.startswith("member."):
            event = {"specversion": "1.0", "id": message.event_id, "source": "urn:portalbridge",
                     "type": f"org.portalbridge.{message.routing_key}.v1", "subject": message.subject,
                     "time": "2026-01-01T12:00:00Z", "datacontenttype": "application/json",
                     "data": message.data}
            _schema(message.routing_key).validate(event)


def test_automated_enrollment_makes_a_pending_member_with_its_effects() -> None:
    bus = MemberBus()
    patient_id = bus.patient()
    outcome = bus.enroll({"request_id": "r1", "identifier": "NGH|100"})
    member = outcome.member
    assert (member.enrollment_status, member.membership_status) == ("Yes", "pending")
    [enrolled] = bus.events("member.enrolled")
    assert enrolled["patient_id"] == patient_id and enrolled["enrollment_method"] == "automated"
    assert enrolled["identifiers"] == [{"value": "100", "authority": "NGH", "type": "MR"}]
    [note] = bus.uow.notifications.committed
    assert (note.kind, note.channel, note.recipient) == ("activation_token", "email", "ann@example.org")
    assert note.secrets == {"token"} and len(note.context["token"]) == 26
    assert enrolled["actor"] == {"type": "interface", "id": "EMR"}
    _validate_events(bus)


def test_unknown_patient_and_double_enrollment_are_refused() -> None:
    bus = MemberBus()
    with pytest.raises(NotFound, match=r"NGH\|999"):
        bus.enroll({"identifier": "NGH|999"})
    bus.patient()
    first = bus.enroll({"identifier": "NGH|100"}).member
    with pytest.raises(AlreadyMember, match="already a pending member") as caught:
        bus.enroll({"identifier": "NGH|100"})
    assert caught.value.member.member_id == first.member_id


def test_the_same_request_id_gives_the_same_member_and_applies_nothing_twice() -> None:
    bus = MemberBus()
    bus.patient()
    first = bus.enroll({"request_id": "same", "identifier": "NGH|100"})
    again = bus.enroll({"request_id": "same", "identifier": "NGH|100"})
    assert again.status == "duplicate" and again.member.member_id == first.member.member_id
    assert len(bus.events("member.enrolled")) == 1 and len(bus.uow.notifications.committed) == 1


def test_automated_use_mpi_policy_rejects_a_patient_without_an_mpi_email() -> None:
    bus = MemberBus()
    bus.patient(email="")
    with pytest.raises(PolicyRefused, match="MPI has none"):
        bus.enroll({"identifier": "NGH|100", "email": "given@example.org"})


def test_point_of_care_without_an_address_asks_for_a_printed_activation() -> None:
    bus = MemberBus()
    bus.patient(email="")
    outcome = bus.enroll({"identifier": "NGH|100"}, mode=EnrollmentMode.POINT_OF_CARE)
    assert outcome.member.printed_activation
    assert bus.uow.notifications.committed == []


def test_text_and_email_preferences_send_on_both_channels() -> None:
    bus = MemberBus()
    bus.patient()
    bus.enroll({"identifier": "NGH|100", "mobile": "+1 617 555 0100", "carrier": "verizon",
                "communication": "email_and_text"})
    channels = {(n.channel, n.recipient, n.carrier) for n in bus.uow.notifications.committed}
    assert channels == {("email", "ann@example.org", None), ("sms", "+1 617 555 0100", "verizon")}


def test_text_needs_a_carrier_whose_gateway_still_delivers() -> None:
    bus = MemberBus()
    bus.patient()
    with pytest.raises(PolicyRefused, match="carrier"):
        bus.enroll({"identifier": "NGH|100", "mobile": "+1 617 555 0100", "carrier": "att",
                    "communication": "text"})  # AT&T closed its gateway on 2025-06-17


def test_activation_with_the_mailed_token() -> None:
    bus = MemberBus()
    bus.patient()
    bus.enroll({"identifier": "NGH|100"})
    [token] = bus.tokens()
    outcome = bus.activate(token)
    assert outcome.member.membership_status == "active" and not outcome.member.refused
    [activated] = bus.events("member.activated")
    assert (activated["old_status"], activated["new_status"]) == ("pending", "active")
    assert [n.kind for n in bus.uow.notifications.committed][-1] == "registration_complete"
    _validate_events(bus)


def test_wrong_fields_are_refused_and_counted_until_the_token_locks() -> None:
    bus = MemberBus()
    bus.patient()
    bus.enroll({"identifier": "NGH|100"})
    [token] = bus.tokens()
    wrong = {"ssn": "999999999", "mothers_maiden_name": "smith"}
    for _ in range(3):
        assert bus.activate(token, fields=wrong).member.refused == "ssn does not match the MPI"
    locked = bus.activate(token)  # right answers, but the token is locked now
    assert locked.member.refused == "the token is locked after repeated failed attempts"
    refusals = [e for e in bus.uow.audit.committed if e.outcome == "refused"]
    assert [e.reason for e in refusals] == ["ssn does not match the MPI"] * 3 + [
        "the token is locked after repeated failed attempts"]
    assert all(e.action == "member.activate" and e.actor.startswith("member:") for e in refusals)
    bus.advance(minutes=5)
    assert bus.activate(token).member.membership_status == "active"


def test_expired_token_then_renewed_by_staff() -> None:
    bus = MemberBus()
    bus.patient()
    member_id = bus.enroll({"identifier": "NGH|100"}).member.member_id
    [token] = bus.tokens()
    bus.advance(hours=72, seconds=1)
    assert bus.activate(token).member.refused == "the token expired"
    bus.run(ManageToken(origin=_origin("renew"), member_id=member_id, action="renew", hours=24,
                        reason="called the help desk", actor=STAFF))
    assert len(bus.uow.notifications.committed) == 1  # renew sends nothing
    assert bus.activate(token).member.membership_status == "active"


def test_regenerate_notifies_when_asked_and_the_old_token_stops_working() -> None:
    bus = MemberBus()
    bus.patient()
    member_id = bus.enroll({"identifier": "NGH|100"}).member.member_id
    [old] = bus.tokens()
    bus.run(ManageToken(origin=_origin("regen"), member_id=member_id, action="regenerate",
                        hours=12, reason="e-mail was wrong", notify=True, actor=STAFF))
    old_again, new = bus.tokens()
    assert old_again == old and new != old
    assert bus.activate(old).member.refused == "no member holds this activation token"
    assert bus.activate(new).member.membership_status == "active"


def test_resend_sends_the_same_token_again() -> None:
    bus = MemberBus()
    bus.patient()
    member_id = bus.enroll({"identifier": "NGH|100"}).member.member_id
    bus.run(ManageToken(origin=_origin("resend"), member_id=member_id, action="resend", actor=STAFF))
    first, second = bus.tokens()
    assert first == second


def test_deactivate_and_reactivate_notify_and_publish() -> None:
    bus = MemberBus()
    bus.patient()
    member_id = bus.enroll({"identifier": "NGH|100"}).member.member_id
    bus.activate(bus.tokens()[0])
    with pytest.raises(PolicyRefused, match="reason"):
        bus.run(ChangeMembershipStatus(origin=_origin("d0"), member_id=member_id,
                                       action="deactivate", reason=" ", actor=STAFF))
    bus.run(ChangeMembershipStatus(origin=_origin("d1"), member_id=member_id, action="deactivate",
                                   reason="member asked", actor=STAFF))
    with pytest.raises(Conflict, match="only an activated member"):
        bus.run(ChangeMembershipStatus(origin=_origin("d2"), member_id=member_id,
                                       action="deactivate", reason="again", actor=STAFF))
    bus.run(ChangeMembershipStatus(origin=_origin("r1"), member_id=member_id, action="reactivate",
                                   reason="member came back", actor=STAFF))
    [deactivated] = bus.events("member.deactivated")
    assert deactivated["reason"] == "member asked" and deactivated["actor"]["type"] == "staff"
    audited = [(e.actor, e.action, e.reason, e.detail["status"]) for e in bus.uow.audit.committed
               if e.action in ("member.deactivate", "member.reactivate")]
    assert audited == [("staff:Pat Staff", "member.deactivate", "member asked", "active -> inactive"),
                       ("staff:Pat Staff", "member.reactivate", "member came back",
                        "inactive -> active")]
    assert [n.kind for n in bus.uow.notifications.committed][-2:] == ["deactivated", "reactivated"]
    _validate_events(bus)


def test_mpi_changed_only_for_members_by_default() -> None:
    bus = MemberBus()
    bus.patient()
    assert bus.events("mpi.changed") == []
    bus.enroll({"identifier": "NGH|100"})
    bus.patient(sex="female")
    assert len(bus.events("mpi.changed")) == 1


def test_mpi_changed_for_all_patients_when_events_say_so() -> None:
    bus = MemberBus("events: {mpi_changed_for: all_patients}\n")
    bus.patient()
    assert len(bus.events("mpi.changed")) == 1


def test_a_route_with_enroll_writes_an_enrollment_request_when_its_conditions_hold() -> None:
    bus = MemberBus(rules=parse_rules("""
facilities: [{code: NORTH, tier: 1, assigning_authority: NGH}]
routes: [{action: upsert_patient, enroll: {requires: [email], enrolling_user: ADT-FEED}}]
"""))
    bus.patient(mrn="100")
    bus.patient(mrn="200", email="")
    [request] = [m for m in bus.uow.outbox.committed if m.routing_key == "enrollment.request"]
    assert request.data == {"request_id": "route:APP^NORTH:adt-100-4", "identifier": "NGH|100",
                            "communication": "email", "enrolling_user": "ADT-FEED",
                            "email": "ann@example.org"}


@pytest.mark.parametrize("value", ["ann\x00@example.org", "ann\ud800@example.org"])
def test_a_request_no_database_could_store_is_refused_before_the_committer(value: str) -> None:
    from engine.enrollment_requests import parse_request
    from engine.errors import InvalidMessage

    with pytest.raises(InvalidMessage, match="email holds a"):
        parse_request({"identifier": "NGH|100", "email": value})
