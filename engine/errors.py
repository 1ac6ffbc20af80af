"""The one exception tree of portalbridge.

Every adapter translates the errors of the libraries it calls into one of these, and the
class alone decides what the sender is told::

    EngineError
    ├── RejectedMessage          do not resend: HL7 AR, HTTP 4xx, dead letter
    │   ├── MalformedMessage     the bytes cannot be read (MSH, delimiters, charset, framing)
    │   ├── InvalidMessage       readable, but a required value is missing or wrong
    │   ├── UnroutableMessage    no route, unknown sender or unsupported message type
    │   ├── NotFound             the thing named does not exist
    │   ├── Conflict             the request contradicts stored state (identifier in use)
    │   │   ├── PreconditionFailed  a condition of the request does not hold (version
    │   │   │                       mismatch, a conditional create matching several)
    │   │   └── AlreadyMember    the patient is already a pending or active member
    │   └── PolicyRefused        a membership policy refuses the request (password rules,
    │                            e-mail policy); ``problems`` lists every broken rule
    ├── TransientFailure         try again later: HL7 AE, HTTP 503, requeue
    │   ├── StoreUnavailable     the database could not be reached or gave up
    │   └── (engine.broker.errors) BrokerUnavailable, BrokerRefused: RabbitMQ down or
    │                            refusing, translated where kombu/py-amqp are called
    └── ConfigurationError       routing.yaml or the settings are wrong: fail at start

``RejectedMessage`` carries an HL7 error code (table 0357) and a location such as
``PID-7`` so that ACKs, OperationOutcomes and dead-letter headers can all say *where*.
"""

from __future__ import annotations

__all__ = [
    "AlreadyMember",
    "ConfigurationError",
    "Conflict",
    "EngineError",
    "InvalidMessage",
    "MalformedMessage",
    "NotFound",
    "PolicyRefused",
    "PreconditionFailed",
    "RejectedMessage",
    "StoreUnavailable",
    "TransientFailure",
    "UnroutableMessage",
    "in_occurrence",
]


class EngineError(Exception):
    """Root of every error portalbridge raises on purpose."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RejectedMessage(EngineError):
    """The input must not be resent as it is: the sender has to change it first."""

    #: HL7 v2 table 0357 "Message error condition codes".
    hl7_error_code = "207"

    def __init__(self, reason: str, location: str | None = None) -> None:
        super().__init__(reason)
        self.location = location

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}" if self.location else self.reason


class MalformedMessage(RejectedMessage):
    """The message cannot be read at all (segment sequence or encoding broken)."""

    hl7_error_code = "100"


class InvalidMessage(RejectedMessage):
    """A required value is missing (101) or a value has the wrong form (102)."""

    hl7_error_code = "101"

    def __init__(self, reason: str, location: str | None = None, *, code: str = "101") -> None:
        super().__init__(reason, location)
        self.hl7_error_code = code


class UnroutableMessage(RejectedMessage):
    """No route accepts this message (unsupported message type or event, unknown sender)."""

    hl7_error_code = "200"

    def __init__(self, reason: str, location: str | None = None, *, code: str = "200") -> None:
        super().__init__(reason, location)
        self.hl7_error_code = code


class NotFound(RejectedMessage):
    """The record, patient or resource named by the request does not exist."""

    hl7_error_code = "204"


class Conflict(RejectedMessage):
    """The request contradicts stored state, for example an identifier already in use."""

    hl7_error_code = "205"


class PreconditionFailed(Conflict):
    """A condition the request set does not hold: an expected version, a unique match."""


class AlreadyMember(Conflict):
    """A patient who is already a pending or active member is never enrolled twice."""

    def __init__(self, reason: str, member: object) -> None:
        super().__init__(reason, "identifier")
        self.member = member  # the existing member's ``MemberView``


class PolicyRefused(RejectedMessage):
    """A membership policy refuses the request; ``problems`` names every broken rule."""

    hl7_error_code = "207"

    def __init__(self, reason: str, location: str | None = None,
                 problems: tuple[str, ...] = ()) -> None:
        super().__init__(reason, location)
        self.problems = problems or (reason,)


class TransientFailure(EngineError):
    """Nothing was applied and the same input may succeed later: the sender should resend."""


class StoreUnavailable(TransientFailure):
    """The database could not be reached, or a transaction failed for a transient reason.

    ``retry_at_once`` marks a failure worth one immediate retry, such as losing a race for a
    key to another writer.
    """

    def __init__(self, reason: str, *, retry_at_once: bool = False) -> None:
        super().__init__(reason)
        self.retry_at_once = retry_at_once


class ConfigurationError(EngineError):
    """The configuration is wrong; ``problems`` lists every problem with its key path."""

    def __init__(self, reason: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.problems = problems or (reason,)


def in_occurrence(error: RejectedMessage, occurrence: int) -> RejectedMessage:
    """``error`` with its location moved to the ``occurrence``-th segment of its name.

    Locations name a segment (``PID-7``, ``MRG-1``); in a message with several patient
    groups ``PID[3]-7`` is the third PID (HL7 ERR: ``PID^3^7``). The first needs no mark.
    """
    location = error.location or ""
    if occurrence > 1 and len(location) >= 3 and location[3:4] in ("", "-"):
        error.location = f"{location[:3]}({occurrence}){location[3:]}"
        if error.reason.startswith(location):  # "PID-7 is not a date" names the place too
            error.reason = error.location + error.reason[len(location):]
    return error
