"""The membership error tree. The engine maps each class to an HTTP status, a queue reply or
an HL7 answer; the message is written for the person who made the request::

    MembershipError
    ├── TransitionRefused       the member's status does not allow this (deactivate a pending
    │   │                       member, renew the token of an active one, ...)
    │   └── AlreadyEnrolled     the patient is already a pending or active member
    ├── EnrollmentRefused       a policy refuses the enrollment (no e-mail where one is needed)
    ├── PolicyViolation         a value breaks a rule (password, passphrase, field format);
    │                           ``problems`` lists every broken rule
    └── ActivationFailed        token, passphrase or fields wrong: the caller only ever sees a
                                generic message; ``reason`` is for the audit log
"""

from __future__ import annotations

__all__ = [
    "ActivationFailed",
    "AlreadyEnrolled",
    "EnrollmentRefused",
    "MembershipError",
    "PolicyViolation",
    "TransitionRefused",
]


class MembershipError(Exception):
    """Root of every refusal the membership domain makes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransitionRefused(MembershipError):
    """The member's current status does not allow the requested change."""


class AlreadyEnrolled(TransitionRefused):
    """A patient who is already a pending or active member is never enrolled twice."""

    def __init__(self, reason: str, member_id: str) -> None:
        super().__init__(reason)
        self.member_id = member_id


class EnrollmentRefused(MembershipError):
    """The enrollment policy of the mode refuses this request."""


class PolicyViolation(MembershipError):
    """A value breaks one or more rules; ``problems`` names each one."""

    def __init__(self, reason: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.problems = problems or (reason,)


#: What a caller is told for every failed activation, whatever the real reason.
GENERIC_ACTIVATION_FAILURE = ("the activation could not be completed: check the activation code "
                              "and the details you entered")


class ActivationFailed(MembershipError):
    """An activation attempt failed. ``str()`` is the generic text; ``reason`` the real one."""

    def __init__(self, reason: str, *, member_id: str | None = None) -> None:
        super().__init__(reason)
        self.member_id = member_id

    def __str__(self) -> str:
        return GENERIC_ACTIVATION_FAILURE
