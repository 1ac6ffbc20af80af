"""Enrollment requests in: validate, check and hash the passphrase off the writer thread,
build ``EnrollPatient`` commands, and turn outcomes into replies. Shared by the queue
consumer and the HTTP routes, so both apply the same rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from engine.commands import Outcome
from engine.enrollment_requests import EnrollmentRequest, enrollment_command, parse_request, reply_for
from engine.errors import EngineError, PolicyRefused, RejectedMessage
from engine.member_commands import Actor, EnrollPatient
from membership.errors import PolicyViolation
from membership.passphrases import PassphraseRules
from membership.passwords import Hashers
from membership.policies import EnrollmentMode, MembershipPolicies
from membership.tokens import RandomSource

__all__ = ["EnrollmentIntake", "PreparedRequest"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedRequest:
    """One request ready for the committer, or refused before it."""

    request_id: str
    command: EnrollPatient | None
    error: RejectedMessage | None = None

    def reply(self, outcome: Outcome | None, error: EngineError | None) -> dict[str, Any]:
        return reply_for(self.request_id, outcome, error or self.error)


class EnrollmentIntake:
    """Prepares enrollment requests; passphrases are hashed on ``pool`` (never the writer)."""

    def __init__(self, policies: MembershipPolicies, hashers: Hashers, random: RandomSource,
                 pool: Executor) -> None:
        self._policies = policies
        self._passphrases = PassphraseRules(policies.passphrase)
        self._hashers = hashers
        self._random = random
        self._pool = pool

    def prepare_many(self, bodies: Sequence[tuple[bytes | dict[str, Any], str]], *,
                     mode: EnrollmentMode, actor: Actor | None, channel: str) -> list[PreparedRequest]:
        """Each ``(body, fallback request id)``; passphrases are hashed in parallel."""
        futures = [self._pool.submit(self.prepare, body, fallback, mode=mode, actor=actor,
                                     channel=channel)
                   if self._passphrases.generates or _has_passphrase(body) else None
                   for body, fallback in bodies]
        return [future.result() if future is not None else
                self.prepare(body, fallback, mode=mode, actor=actor, channel=channel)
                for (body, fallback), future in zip(bodies, futures, strict=True)]

    def prepare(self, body: bytes | dict[str, Any], fallback_id: str, *, mode: EnrollmentMode,
                actor: Actor | None, channel: str) -> PreparedRequest:
        """Validate one request (this thread hashes its passphrase: call it off the loop)."""
        request_id = fallback_id
        try:
            request = parse_request(body)
            request_id = request.request_id or fallback_id
            passphrase = self._passphrase(request)
            passphrase_hash = self._hashers.hash(passphrase) if passphrase else None
        except RejectedMessage as exc:
            return PreparedRequest(request_id=request_id, command=None, error=exc)
        enrolling = request.enrolling_user or ""
        if not enrolling and actor is None:
            log.info("enrollment request %s names no enrolling user: recorded as %s", request_id,
                     self._policies.default_enrolling_user)
        who = actor or Actor(type="interface", id=enrolling or self._policies.default_enrolling_user)
        command = enrollment_command(request, mode=mode, request_id=request_id, actor=who,
                                     passphrase_hash=passphrase_hash, passphrase=passphrase,
                                     channel=channel)
        return PreparedRequest(request_id=request_id, command=command)

    def _passphrase(self, request: EnrollmentRequest) -> str | None:
        try:
            given = self._passphrases.accept(request.passphrase, request.passphrase_repeated)
        except PolicyViolation as exc:
            raise PolicyRefused(exc.reason, "passphrase", exc.problems) from exc
        if given is None and self._passphrases.generates:
            return self._passphrases.generate(self._random)
        return given


def _has_passphrase(body: bytes | dict[str, Any]) -> bool:
    if isinstance(body, dict):
        return bool(body.get("passphrase"))
    return b'"passphrase"' in body
