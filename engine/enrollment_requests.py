"""Automated-enrollment requests: the JSON contract of ``portalbridge.enrollment.requests``,
its validation into ``EnrollPatient``, its reply, and the trigger that writes a request to
the outbox when a route's ``enroll:`` rule holds for a stored patient.

Request (external systems publish the same JSON)::

    {"request_id": "...", "identifier": "AUTHORITY|VALUE", "email": "...", "mobile": "...",
     "carrier": "...", "communication": "email|text|email_and_text", "locale": "en-US",
     "passphrase": "...", "enrolling_user": "...", "proxy_only": false}

Reply (to ``reply_to``, with the request's ``correlation_id``)::

    {"request_id", "status": "accepted|rejected|duplicate", "member_id",
     "enrollment_status", "membership_status", "reason"}
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine.commands import MessageOrigin, Outcome, SavePatientResource, UpsertPatientRecord
from engine.domain.clock import IdSource
from engine.errors import AlreadyMember, EngineError, InvalidMessage, MalformedMessage
from engine.member_commands import Actor, EnrollPatient, MemberView, PreferenceInput
from engine.membership_rules import EnrollRule
from engine.rules import RoutingRules
from engine.uow import OutboxMessage, UnitOfWork
from membership.model import Communication
from membership.policies import EnrollmentMode
from mpi.limits import unstorable_reason
from mpi.model import Demographics

__all__ = ["ENROLLMENT_REQUEST_KEY", "ENROLLMENT_SENDER", "EnrollmentRequest", "EnrollmentTrigger",
           "enrollment_command", "parse_request", "reply_body", "reply_for", "storable_strings"]

#: Outbox routing key of enrollment requests: the relay sends them to the request queue.
ENROLLMENT_REQUEST_KEY = "enrollment.request"
#: Inbox namespace of enrollment request ids (queue and HTTP share it: same id, same answer).
ENROLLMENT_SENDER = "enrollment"
_IDENTIFIER = r"^[^|]{1,200}\|[^|]{1,200}$"
_MOBILE = re.compile(r"^\+?[0-9 ().-]{4,32}$")


def storable_strings(data: Any) -> Any:
    """Refuse a NUL or a lone surrogate in any string value: no database stores them, and a
    request failing at commit would be retried forever instead of answered."""
    if isinstance(data, dict):
        for key, value in data.items():
            reason = unstorable_reason(value) if isinstance(value, str) else None
            if reason is not None:
                raise ValueError(f"{key} {reason}")
    return data


class EnrollmentRequest(BaseModel):
    """One request, validated (unknown keys refused; every length within its column)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    _storable = model_validator(mode="before")(storable_strings)

    request_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    identifier: Annotated[str, Field(pattern=_IDENTIFIER)]
    email: Annotated[str, Field(max_length=254, pattern=r"^$|^[^@\s]+@[^@\s]+$")] | None = None
    mobile: Annotated[str, Field(max_length=32, pattern=r"^$|^\+?[0-9 ().-]{4,32}$")] | None = None
    carrier: Annotated[str, Field(max_length=64)] | None = None
    communication: Communication | None = None
    locale: Annotated[str, Field(min_length=2, max_length=16)] | None = None
    passphrase: Annotated[str, Field(max_length=200)] | None = None
    passphrase_repeated: Annotated[str, Field(max_length=200)] | None = None
    enrolling_user: Annotated[str, Field(max_length=128)] | None = None
    proxy_only: bool = False


def parse_request(body: bytes | dict[str, Any]) -> EnrollmentRequest:
    """A request from JSON bytes (or a decoded object); ``RejectedMessage`` names the problem."""
    try:
        data = orjson.loads(body) if isinstance(body, bytes | bytearray) else body
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"the request is not JSON: {exc}", "body") from exc
    if not isinstance(data, dict):
        raise MalformedMessage("the request must be a JSON object", "body")
    try:
        return EnrollmentRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise InvalidMessage(f"{where}: {message}", where, code="102") from exc


def enrollment_command(request: EnrollmentRequest, *, mode: EnrollmentMode, request_id: str,
                       actor: Actor, passphrase_hash: str | None, passphrase: str | None,
                       channel: str) -> EnrollPatient:
    """The command for a validated request (its passphrase already checked and hashed)."""
    authority, value = request.identifier.split("|", 1)
    origin = MessageOrigin(channel=channel, sender=ENROLLMENT_SENDER, control_id=request_id,
                           message_type="EnrollPatient", facility="")
    return EnrollPatient(
        origin=origin, mode=mode, authority=authority, value=value,
        preferences=PreferenceInput(email=request.email, mobile=request.mobile,
                                    carrier=request.carrier, communication=request.communication,
                                    locale=request.locale),
        passphrase_hash=passphrase_hash, passphrase=passphrase,
        enrolling_user=request.enrolling_user or "", proxy_only=request.proxy_only, actor=actor)


def reply_for(request_id: str, outcome: Outcome | None, error: EngineError | None) -> dict[str, Any]:
    """The reply object of one request."""
    member: MemberView | None = outcome.member if outcome is not None else None
    status = "accepted"
    reason = ""
    if error is not None:
        status, reason = "rejected", error.reason
        if isinstance(error, AlreadyMember):
            member = error.member  # type: ignore[assignment]
    elif outcome is not None and outcome.status == "duplicate":
        status, reason = "duplicate", "this request id was applied before"
    return {"request_id": request_id, "status": status,
            "member_id": member.member_id if member else None,
            "enrollment_status": member.enrollment_status if member else "No",
            "membership_status": member.membership_status if member else None,
            "printed_activation": member.printed_activation if member else False,
            "reason": reason}


def reply_body(reply: dict[str, Any]) -> bytes:
    return orjson.dumps(reply)


_CONDITIONS = {
    "email": lambda d: any(t.value for t in d.emails),
    "mobile": lambda d: any(t.value for t in d.phones if t.use in ("mobile", "")),
    "address": lambda d: bool(d.addresses),
    "ssn": lambda d: bool(d.ssn),
    "birth_date": lambda d: bool(d.birth_date),
}


class EnrollmentTrigger:
    """Writes an enrollment request to the outbox when a route's ``enroll:`` rule holds."""

    def __init__(self, rules: RoutingRules, ids: IdSource) -> None:
        self._rules = rules
        self._ids = ids

    def request(self, command: UpsertPatientRecord | SavePatientResource, rule: EnrollRule,
                uow: UnitOfWork) -> bool:
        record = uow.mpi.get_record(command.key)
        patient = uow.mpi.get_patient(record.patient_id) if record else None
        if record is None or patient is None or uow.members.by_patient(patient.id) is not None:
            return False
        if not all(_CONDITIONS[c](patient.best) for c in rule.requires):
            return False
        origin = command.origin
        request_id = f"route:{origin.sender}:{origin.control_id}"[:200]
        uow.outbox.add(OutboxMessage(
            event_id=self._ids.new_uuid(), routing_key=ENROLLMENT_REQUEST_KEY,
            subject=f"enroll:{patient.id}", correlation_id=origin.control_id,
            occurred_at=record.updated_at, data=self._body(request_id, command, rule, patient.best)))
        return True

    def _body(self, request_id: str, command: UpsertPatientRecord | SavePatientResource,
              rule: EnrollRule, best: Demographics) -> dict[str, Any]:
        body: dict[str, Any] = {
            "request_id": request_id,
            "identifier": f"{command.key.authority}|{command.key.mrn}",
            "communication": rule.communication.value,
            "enrolling_user": rule.enrolling_user or self._rules.membership.default_enrolling_user,
        }
        email = next((t.value for t in best.emails if t.value), "")
        mobile = next((t.value for t in best.phones if t.value and t.use in ("mobile", "")), "")
        if email:
            body["email"] = email
        if _MOBILE.match(mobile) and rule.communication is not Communication.EMAIL:
            body["mobile"] = mobile
        if rule.locale:
            body["locale"] = rule.locale
        return body

