"""Member operations under ``/portal``: activation, sign-in, password reset completion.

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
    UpgradePasswordHash,
)
from engine.member_handlers import USERNAME
from engine.store.member_queries import MemberQueries
from inbound.http.errors import http_error
from membership.enrollment import check_field_formats
from membership.errors import GENERIC_ACTIVATION_FAILURE, PolicyViolation
from membership.model import Communication, MembershipStatus
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

__all__ = ["PortalDependencies", "password_validators", "portal_router"]

T = TypeVar("T")
Apply = Callable[[Command], Awaitable[Outcome]]
Secret = Annotated[str, Field(min_length=1, max_length=200)]
SIGN_IN_FAILED = "the username or password is not correct"


@dataclass(frozen=True, slots=True, kw_only=True)
class PortalDependencies:
    apply: Apply
    queries: MemberQueries
    hashers: Hashers
    pool: Executor
    policies: MembershipPolicies
    clock: Clock


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)
    _storable = model_validator(mode="before")(storable_strings)


class PreferencesBody(_Body):
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    mobile: Annotated[str, Field(max_length=32, pattern=r"^\+?[0-9 ().-]{4,32}$")] | None = None
    carrier: Annotated[str, Field(max_length=64)] | None = None
    communication: Communication | None = None
    locale: Annotated[str, Field(min_length=2, max_length=16)] | None = None

    def value(self) -> PreferenceInput:
        return PreferenceInput(**self.model_dump())


class ActivationBody(_Body):
    token: Annotated[str, Field(min_length=1, max_length=64)]
    passphrase: Secret | None = None
    fields: Annotated[dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=200)]],
                      Field(max_length=8)] = {}
    username: Annotated[str, Field(min_length=1, max_length=150)]
    password: Secret
    preferences: PreferencesBody = PreferencesBody()


class SignInBody(_Body):
    username: Annotated[str, Field(min_length=1, max_length=150)]
    password: Secret


class ResetBody(_Body):
    token: Annotated[str, Field(min_length=1, max_length=64)]
    password: Secret


def password_validators(policies: MembershipPolicies) -> list[SecretValidator]:
    """The password rules of the policy (length, mix, dictionary; history is per member)."""
    rules = policies.password
    validators = character_validators(rules.characters)
    if rules.dictionary_check:
        validators.append(CommonChoices((*shipped_common_passwords(), *rules.extra_common)))
    return validators


def _origin(kind: str) -> MessageOrigin:
    return MessageOrigin(channel="http", sender="portal", control_id=str(uuid.uuid4()),
                         message_type=kind, facility="")


def _unprocessable(exc: PolicyViolation | PolicyRefused) -> HTTPException:
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
        raise _unprocessable(exc) from exc


def portal_router(deps: PortalDependencies) -> APIRouter:
    """The ``/portal`` routes."""
    router = APIRouter(prefix="/portal", tags=["portal"])
    validators = password_validators(deps.policies)

    async def off_loop(fn: Callable[..., T], *args: Any) -> T:
        """Slow hashing, on the hashing pool (as wide as the machine)."""
        return await asyncio.wrap_future(deps.pool.submit(fn, *args))

    async def read(fn: Callable[..., T], *args: Any) -> T:
        """A database read: on asyncio's default threads, so it never waits behind hashing."""
        return await asyncio.to_thread(fn, *args)

    async def apply(command: Command) -> Outcome:
        try:
            return await deps.apply(command)
        except EngineError as exc:
            raise http_error(exc) from exc

    @router.post("/activation")
    async def activate(body: ActivationBody) -> dict[str, Any]:
        """Activate a pending account: token, passphrase and fields as the policy asks."""
        _check_activation(body, deps.policies, validators)
        member = await read(deps.queries.by_token, token_digest(body.token))
        stored = member.passphrase_hash if member is not None else None
        password_hash = off_loop(deps.hashers.hash, body.password)
        passphrase_ok = (await off_loop(deps.hashers.check, body.passphrase or "", stored)).ok \
            if stored is not None else None
        outcome = await apply(ActivateMember(
            origin=_origin("ActivateMember"), token=body.token, passphrase_ok=passphrase_ok,
            passphrase_checked_against=stored, fields=dict(body.fields), username=body.username,
            password_hash=await password_hash, preferences=body.preferences.value()))
        view = outcome.member
        if view is None or view.refused:
            raise HTTPException(400, GENERIC_ACTIVATION_FAILURE)
        return {"member_id": view.member_id, "membership_status": view.membership_status}

    @router.post("/sign-in")
    async def sign_in(body: SignInBody) -> dict[str, Any]:
        """Check a member's username and password (the hash is upgraded when the policy moved)."""
        member = await read(deps.queries.by_username, body.username)
        stored = member.password_hash if member is not None else None
        check = await off_loop(deps.hashers.check, body.password, stored or "x$")
        if member is None or stored is None or not check.ok:
            raise HTTPException(401, SIGN_IN_FAILED)
        if member.membership_status is not MembershipStatus.ACTIVE:
            raise HTTPException(403, f"the account is {member.membership_status.value}")
        if check.must_update:
            new_hash = await off_loop(deps.hashers.hash, body.password)
            await apply(UpgradePasswordHash(origin=_origin("UpgradePasswordHash"), member_id=member.id,
                                            expected=stored, new_hash=new_hash))
        expired = member.password_expired(deps.clock.now(), deps.policies.password.expire_after)
        return {"member_id": member.id, "membership_status": member.membership_status.value,
                "password_expired": expired}

    @router.post("/password-reset")
    async def complete_reset(body: ResetBody) -> dict[str, Any]:
        """Choose a new password with the code of a reset notification."""
        try:
            check_secret("the password", body.password, validators)
        except PolicyViolation as exc:
            raise _unprocessable(exc) from exc
        member = await read(deps.queries.by_reset_token, token_digest(body.token))
        history = member.password_history if member is not None else ()
        current = (member.password_hash,) if member is not None and member.password_hash else ()
        previous = (*current, *history)[:max(deps.policies.password.history, 1)]
        reused = await off_loop(NotRecentlyUsed(previous, deps.hashers).validate, body.password)
        new_hash = await off_loop(deps.hashers.hash, body.password)
        outcome = await apply(CompletePasswordReset(
            origin=_origin("CompletePasswordReset"), token=body.token, password_hash=new_hash,
            history_checked_against=history, reused=reused is not None))
        view = outcome.member
        return {"member_id": view.member_id if view else None, "password_changed": True}

    return router
