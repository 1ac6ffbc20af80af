"""Member operations under ``/portal``: activation and password reset completion (sign-in,
sessions, two-factor codes, the profile and reset requests: ``inbound.http.portal_signin``).

Hashing and verifying are slow on purpose: they run on the hashing pool (never the event
loop, never the writer thread), before the command goes to the group committer. Every
failed activation or sign-in gets one generic answer; the precise reason goes to the audit
log only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.commands import Command, MessageOrigin, Outcome
from engine.domain.clock import Clock
from engine.enrollment_requests import storable_strings
from engine.errors import EngineError, PolicyRefused
from engine.member_commands import (
    ActivateMember,
    CompletePasswordReset,
    PreferenceInput,
)
from engine.member_handlers import USERNAME
from engine.store.member_queries import MemberQueries
from engine.store.sessions import SessionStore
from inbound.http.errors import http_error
from membership.enrollment import check_field_formats
from membership.errors import GENERIC_ACTIVATION_FAILURE, PolicyViolation
from membership.model import Communication, Member
from membership.passwords import Hashers
from membership.policies import MembershipPolicies
from membership.tokens import token_digest
from membership.validators import (
    CommonChoices,
    NotRecentlyUsed,
    SecretValidator,
    character_validators,
    check_secret,
    shipped_common_passwords,
)
from mpi.search import MpiSearch

__all__ = ["NewPassword", "PortalBody", "PortalCalls", "PortalDependencies",
           "complete_password_reset", "new_password", "origin", "password_validators",
           "portal_router"]

T = TypeVar("T")
Apply = Callable[[Command], Awaitable[Outcome]]
Secret = Annotated[str, Field(min_length=1, max_length=200)]


@dataclass(frozen=True, slots=True, kw_only=True)
class PortalDependencies:
    apply: Apply
    queries: MemberQueries
    hashers: Hashers
    pool: Executor
    policies: MembershipPolicies
    clock: Clock
    sessions: SessionStore
    search: MpiSearch
    #: A hash of a random password made with the preferred hasher at start: an unknown
    #: username is checked against it, so it costs exactly what a wrong password costs.
    decoy_hash: str


class PortalCalls:
    """How the portal routes reach the core: hashing on the pool, reads on threads, changes
    through the group committer (engine errors as HTTP answers)."""

    def __init__(self, deps: PortalDependencies) -> None:
        self.deps = deps

    async def off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """Slow hashing, on the hashing pool (as wide as the machine)."""
        return await asyncio.wrap_future(self.deps.pool.submit(fn, *args))

    @staticmethod
    async def read(fn: Callable[..., T], *args: Any) -> T:
        """A database read: on asyncio's default threads, so it never waits behind hashing."""
        return await asyncio.to_thread(fn, *args)

    async def apply(self, command: Command) -> Outcome:
        try:
            return await self.deps.apply(command)
        except EngineError as exc:
            raise http_error(exc) from exc


class PortalBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)
    _storable = model_validator(mode="before")(storable_strings)


class PreferencesBody(PortalBody):
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    mobile: Annotated[str, Field(max_length=32, pattern=r"^\+?[0-9 ().-]{4,32}$")] | None = None
    carrier: Annotated[str, Field(max_length=64)] | None = None
    communication: Communication | None = None
    locale: Annotated[str, Field(min_length=2, max_length=16)] | None = None

    def value(self) -> PreferenceInput:
        return PreferenceInput(**self.model_dump())


class ActivationBody(PortalBody):
    token: Annotated[str, Field(min_length=1, max_length=64)]
    passphrase: Secret | None = None
    fields: Annotated[dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=200)]],
                      Field(max_length=8)] = {}
    username: Annotated[str, Field(min_length=1, max_length=150)]
    password: Secret
    preferences: PreferencesBody = PreferencesBody()


class ResetBody(PortalBody):
    token: Annotated[str, Field(min_length=1, max_length=64)]
    password: Secret


def password_validators(policies: MembershipPolicies) -> list[SecretValidator]:
    """The password rules of the policy (length, mix, dictionary; history is per member)."""
    rules = policies.password
    validators = character_validators(rules.characters)
    if rules.dictionary_check:
        validators.append(CommonChoices((*shipped_common_passwords(), *rules.extra_common)))
    return validators


def origin(kind: str) -> MessageOrigin:
    return MessageOrigin(channel="http", sender="portal", control_id=str(uuid.uuid4()),
                         message_type=kind, facility="")


def unprocessable(exc: PolicyViolation | PolicyRefused) -> HTTPException:
    return HTTPException(422, {"message": exc.reason, "problems": list(exc.problems)})


def _check_activation(body: ActivationBody, policies: MembershipPolicies,
                      validators: list[SecretValidator]) -> None:
    """What can be told before the token is looked at: username, field formats, password rules."""
    try:
        if not USERNAME.match(body.username):
            raise PolicyViolation("the username must be 3-150 letters, digits or . _ @ + -")
        check_field_formats(policies.required_fields, body.fields)
        check_secret("the password", body.password, validators)
    except PolicyViolation as exc:
        raise unprocessable(exc) from exc


def portal_router(deps: PortalDependencies) -> APIRouter:
    """The ``/portal`` routes of activation and reset completion."""
    router = APIRouter(prefix="/portal", tags=["portal"])
    validators = password_validators(deps.policies)
    calls = PortalCalls(deps)

    @router.post("/activation")
    async def activate(body: ActivationBody) -> dict[str, Any]:
        """Activate a pending account: token, passphrase and fields as the policy asks."""
        _check_activation(body, deps.policies, validators)
        member = await calls.read(deps.queries.by_token, token_digest(body.token))
        stored = member.passphrase_hash if member is not None else None
        password_hash = calls.off_loop(deps.hashers.hash, body.password)
        passphrase_ok = (await calls.off_loop(deps.hashers.check, body.passphrase or "", stored)).ok \
            if stored is not None else None
        outcome = await calls.apply(ActivateMember(
            origin=origin("ActivateMember"), token=body.token, passphrase_ok=passphrase_ok,
            passphrase_checked_against=stored, fields=dict(body.fields), username=body.username,
            password_hash=await password_hash, preferences=body.preferences.value()))
        view = outcome.member
        if view is None or view.refused:
            raise HTTPException(400, GENERIC_ACTIVATION_FAILURE)
        return {"member_id": view.member_id, "membership_status": view.membership_status}

    @router.post("/password-reset")
    async def complete_reset(body: ResetBody) -> dict[str, Any]:
        """Choose a new password with the code of a reset notification (also
        ``POST /portal/password-resets/{token}``)."""
        return await complete_password_reset(calls, validators, body.token, body.password)

    return router


async def complete_password_reset(calls: PortalCalls, validators: list[SecretValidator], token: str,
                                  password: str) -> dict[str, Any]:
    """The whole password policy, history included, then the single-use token is spent and
    every session of the member ends."""
    deps = calls.deps
    member = await calls.read(deps.queries.by_reset_token, token_digest(token))
    chosen = await new_password(calls, validators, member, password)
    outcome = await calls.apply(CompletePasswordReset(
        origin=origin("CompletePasswordReset"), token=token, password_hash=chosen.hash,
        history_checked_against=chosen.history, reused=chosen.reused))
    view = outcome.member
    if view is not None:
        await calls.read(deps.sessions.end_all, view.member_id)
    return {"member_id": view.member_id if view else None, "password_changed": True}


@dataclass(frozen=True, slots=True)
class NewPassword:
    """A chosen password, hashed, and whether it is one of the member's recent ones."""

    hash: str
    history: tuple[str, ...]  # the stored hashes it was compared with (besides the current)
    reused: bool


async def new_password(calls: PortalCalls, validators: list[SecretValidator], member: Member | None,
                       password: str) -> NewPassword:
    """Check ``password`` against the policy (422 naming every broken rule) and the member's
    recent passwords, and hash it: both slow steps on the hashing pool."""
    deps = calls.deps
    try:
        check_secret("the password", password, validators)
    except PolicyViolation as exc:
        raise unprocessable(exc) from exc
    history = member.password_history if member is not None else ()
    current = (member.password_hash,) if member is not None and member.password_hash else ()
    previous = (*current, *history)[:max(deps.policies.password.history, 1)]
    reused = await calls.off_loop(NotRecentlyUsed(previous, deps.hashers).validate, password)
    return NewPassword(await calls.off_loop(deps.hashers.hash, password), history, reused is not None)
