"""A message bus with membership wired to fakes, and helpers to drive it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from engine.commands import MessageOrigin, Outcome, UpsertPatientRecord
from engine.enrollment_requests import enrollment_command, parse_request
from engine.handlers import MessageBus
from engine.member_commands import ActivateMember, Actor, PreferenceInput
from engine.member_effects import Effects, audit_member_event
from engine.member_handlers import MemberHandlers, MemberServices
from engine.rules import RoutingRules, parse_rules
from membership.policies import EnrollmentMode
from mpi.model import Demographics, DemographicsUpdate, Identifier, RecordKey, Telecom
from tests.fakes import (
    CountingRandom,
    FixedClock,
    InMemoryUnitOfWork,
    ReversibleBox,
    SequentialIds,
)

RULES = """
facilities: [{code: NORTH, tier: 1, assigning_authority: NGH}]
routes: [{action: upsert_patient}]
"""
SYSTEM = Actor(type="interface", id="EMR")


class MemberBus:
    """The bus, its fakes and one shared in-memory store (each ``run`` is one commit)."""

    def __init__(self, extra_yaml: str = "", rules: RoutingRules | None = None) -> None:
        self.rules = rules or parse_rules(RULES + extra_yaml)
        self.clock = FixedClock()
        self.ids = SequentialIds()
        self.box = ReversibleBox()
        policies = self.rules.membership.policies()
        effects = Effects(ids=self.ids, box=self.box, publish=frozenset(self.rules.events.publish),
                          notify_password_change=policies.password.notify_on_change,
                          audit=audit_member_event)
        self.handlers = MemberHandlers(MemberServices(
            policies=policies, clock=self.clock, ids=self.ids, random=CountingRandom(), box=self.box,
            effects=effects, channels=self.rules.notifications))
        self.bus = MessageBus(self.rules, self.clock, self.ids, self.handlers)
        self.uow = InMemoryUnitOfWork()

    def run(self, command: Any) -> Outcome:
        try:
            outcome = self.bus.handle(command, self.uow)
        except Exception:
            self.uow.close()
            raise
        self.uow.commit()
        return outcome

    def patient(self, mrn: str = "100", email: str = "ann@example.org", **values: Any) -> str:
        values.setdefault("identifiers", (Identifier(mrn, "NGH", "MR"),))
        if email:
            values["emails"] = (Telecom("email", email),)
        values.setdefault("ssn", "123-45-6789")
        values.setdefault("mothers_maiden_name", "Smith")
        command = UpsertPatientRecord(
            origin=MessageOrigin(channel="hl7", sender="APP^NORTH", control_id=f"adt-{mrn}-{len(values)}",
                                 message_type="ADT^A04", facility="NORTH"),
            key=RecordKey("NORTH", "NGH", mrn),
            update=DemographicsUpdate(Demographics(**values), frozenset(values)),
            enroll=self.rules.routes[0].enroll)
        self.run(command)
        record = self.uow.mpi.get_record(RecordKey("NORTH", "NGH", mrn))
        assert record is not None
        return record.patient_id

    def enroll(self, body: dict[str, Any], *, mode: EnrollmentMode = EnrollmentMode.AUTOMATED,
               passphrase_hash: str | None = None) -> Outcome:
        request = parse_request(body)
        return self.run(enrollment_command(
            request, mode=mode, request_id=request.request_id or self.ids.new_uuid(), actor=SYSTEM,
            passphrase_hash=passphrase_hash, passphrase=request.passphrase, channel="test"))

    def tokens(self, kind: str = "activation_token") -> list[str]:
        """The clear tokens of committed notifications of ``kind``, newest last."""
        return [n.context["token"] for n in self.uow.notifications.committed if n.kind == kind]

    def activate(self, token: str, *, fields: dict[str, str] | None = None, username: str = "ann",
                 passphrase_ok: bool | None = None, checked: str | None = None) -> Outcome:
        return self.run(ActivateMember(
            origin=MessageOrigin(channel="http", sender="portal", control_id=self.ids.new_uuid(),
                                 message_type="ActivateMember", facility=""),
            token=token, passphrase_ok=passphrase_ok, passphrase_checked_against=checked,
            fields=fields if fields is not None else {"ssn": "123456789",
                                                      "mothers_maiden_name": "smith"},
            username=username, password_hash="pbkdf2_sha256$1$c2FsdA==$aGFzaA==",
            preferences=PreferenceInput()))

    def advance(self, **delta: float) -> None:
        self.clock.current += timedelta(**delta)

    def events(self, routing_key: str) -> list[dict[str, Any]]:
        return [m.data for m in self.uow.outbox.committed if m.routing_key == routing_key]
