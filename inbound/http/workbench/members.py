"""Member Account Manager routes: members by status and search, details, the activation
token (resend, renew, regenerate), deactivate and reactivate, preferences, password reset.
Every change carries the staff member's reason into the audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.enrollment_requests import storable_strings
from engine.member_commands import (
    ChangeMembershipStatus,
    ManageToken,
    RequestPasswordReset,
    UnlockMember,
    UpdatePreferences,
)
from engine.staff import Role, StaffPrincipal
from inbound.http.auth import StaffAuth
from inbound.http.portal import PreferencesBody
from inbound.http.workbench.membership_deps import MembershipHttp, staff_actor
from membership.model import Member

__all__ = ["MANAGERS", "members_router"]

MANAGERS = (Role.MEMBER_ACCOUNT_MANAGER,)
Reason = Annotated[str, Field(min_length=1, max_length=1000)]
Status = Literal["pending", "active", "inactive", "inactive/minor"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _storable = model_validator(mode="before")(storable_strings)


class ReasonBody(_Body):
    reason: Reason


class ExpirationBody(_Body):
    """The new validity, entered as days and hours (1 .. the maximum reset window in all)."""

    reason: Reason
    days: Annotated[int, Field(ge=0, le=365)] = 0
    hours: Annotated[int, Field(ge=0, le=8760)] = 0
    notify: bool = False  # regenerate only: send the new token to the member


class PreferencesChange(PreferencesBody):
    reason: Reason


def member_details(member: Member) -> dict[str, Any]:
    """What the Member Details page shows (no secrets, no hashes)."""
    p, token = member.preferences, member.token
    return {
        "member_id": member.id, "patient_id": member.patient_id,
        "enrollment_status": member.enrollment_status.value,
        "membership_status": member.membership_status.value,
        "status_since": member.status_since.isoformat(), "username": member.username,
        "preferences": {"email": p.email, "mobile": p.mobile, "carrier": p.carrier,
                        "communication": p.communication.value, "locale": p.locale},
        "proxy_only": member.proxy_only, "enrollment_mode": member.mode,
        "enrolled_by": member.enrolled_by, "enrolled_at": member.enrolled_at.isoformat(),
        "printed_activation": member.printed_activation,
        "token_expires_at": token.expires_at.isoformat() if token else None,
        "token_locked_until": token.locked_until.isoformat() if token and token.locked_until else None,
        "activated_at": member.activated_at.isoformat() if member.activated_at else None,
        "address": member.address.to_dict() if member.address else None,  # the member's own
        "lock": _lock(member),
        "password_expired_at": member.password_expired_at.isoformat()
        if member.password_expired_at else None,
    }


def _lock(member: Member) -> dict[str, Any] | None:
    """The recorded sign-in lock (a timed one may already be over), or None."""
    lock = member.lockout
    if lock.locked_at is None:
        return None
    return {"locked_at": lock.locked_at.isoformat(), "mechanism": lock.mechanism,
            "locked_until": lock.locked_until.isoformat() if lock.locked_until else None}


def members_router(auth: StaffAuth, deps: MembershipHttp) -> APIRouter:
    router = APIRouter(prefix="/workbench/members", tags=["workbench"])
    manager = Depends(auth.requires(*MANAGERS))

    @router.get("")
    async def list_members(  # noqa: PLR0917 - query parameters, named by FastAPI
        status: Status | None = None,
        identifier: Annotated[str | None, Query(max_length=401)] = None,
        family: Annotated[str | None, Query(max_length=200)] = None,
        birthdate: Annotated[str | None, Query(max_length=10)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
        *, principal: StaffPrincipal = manager,
    ) -> dict[str, Any]:
        """Members by status, optionally among the patients a search finds."""
        patient_ids = None
        if identifier:
            authority, _, value = identifier.rpartition("|")
            views = await deps.read(deps.search.by_identifier, authority or None, value)
            patient_ids = [v.patient.id for v in views]
        elif family or birthdate:
            views = await deps.read(deps.search.by_name_and_birth_date, family, birthdate)
            patient_ids = [v.patient.id for v in views]
        page = await deps.read(deps.queries.page, status, patient_ids, limit, offset)
        return {"total": page.total, "members": [member_details(m) for m in page.members]}

    async def with_delivery(member: Member) -> dict[str, Any]:
        """The details, and how the member's latest notifications were delivered."""
        found = member_details(member)
        if deps.notifications is not None:
            records = await deps.read(deps.notifications.of_member, member.id)
            found["notifications"] = [record.to_dict() for record in records]
        return found

    @router.get("/{member_id}")
    async def details(member_id: str, *, principal: StaffPrincipal = manager) -> dict[str, Any]:
        member = await deps.read(deps.queries.get, member_id)
        if member is None:
            raise deps.not_found(f"member {member_id}")
        return await with_delivery(member)

    async def answer(member_id: str) -> dict[str, Any]:
        member = await deps.read(deps.queries.get, member_id)
        if member is None:  # pragma: no cover - the command just found it
            raise deps.not_found(f"member {member_id}")
        return await with_delivery(member)

    @router.post("/{member_id}/token/resend")
    async def resend(member_id: str, body: ReasonBody | None = None, *,
                    principal: StaffPrincipal = manager) -> dict[str, Any]:
        """Send the same token again to the member's current preferences."""
        reason = body.reason if body else ""
        await deps.run(ManageToken(origin=deps.origin("ResendToken"), member_id=member_id,
                                   action="resend", reason=reason, actor=staff_actor(principal)),
                       principal, "token.resend", member_id, reason)
        return await answer(member_id)

    async def token(member_id: str, action: Literal["renew", "regenerate"], body: ExpirationBody,
                    principal: StaffPrincipal) -> dict[str, Any]:
        hours = body.days * 24 + body.hours
        await deps.run(ManageToken(origin=deps.origin(f"{action}Token"), member_id=member_id,
                                   action=action, hours=hours, reason=body.reason,
                                   notify=body.notify and action == "regenerate",
                                   actor=staff_actor(principal)),
                       principal, f"token.{action}", member_id, body.reason)
        return await answer(member_id)

    @router.post("/{member_id}/token/renew")
    async def renew(member_id: str, body: ExpirationBody, *,
                    principal: StaffPrincipal = manager) -> dict[str, Any]:
        """The same token, valid again for days + hours from now (no notification)."""
        return await token(member_id, "renew", body, principal)

    @router.post("/{member_id}/token/regenerate")
    async def regenerate(member_id: str, body: ExpirationBody, *,
                         principal: StaffPrincipal = manager) -> dict[str, Any]:
        """A new token (the old one stops working at once); ``notify`` sends it."""
        return await token(member_id, "regenerate", body, principal)

    async def status(member_id: str, action: Literal["deactivate", "reactivate"], body: ReasonBody,
                     principal: StaffPrincipal) -> dict[str, Any]:
        await deps.run(ChangeMembershipStatus(origin=deps.origin(action), member_id=member_id,
                                              action=action, reason=body.reason,
                                              actor=staff_actor(principal)),
                       principal, f"member.{action}", member_id, body.reason)
        return await answer(member_id)

    @router.post("/{member_id}/deactivate")
    async def deactivate(member_id: str, body: ReasonBody, *,
                         principal: StaffPrincipal = manager) -> dict[str, Any]:
        """Active -> inactive, with a reason; the member is notified."""
        return await status(member_id, "deactivate", body, principal)

    @router.post("/{member_id}/reactivate")
    async def reactivate(member_id: str, body: ReasonBody, *,
                         principal: StaffPrincipal = manager) -> dict[str, Any]:
        """Inactive -> active, with a reason; the member is notified."""
        return await status(member_id, "reactivate", body, principal)

    @router.patch("/{member_id}/preferences")
    async def preferences(member_id: str, body: PreferencesChange, *,
                         principal: StaffPrincipal = manager) -> dict[str, Any]:
        change = PreferencesBody(**body.model_dump(exclude={"reason"})).value()
        await deps.run(UpdatePreferences(origin=deps.origin("UpdatePreferences"), member_id=member_id,
                                         preferences=change, reason=body.reason,
                                         actor=staff_actor(principal)),
                       principal, "member.preferences", member_id, body.reason)
        return await answer(member_id)

    _credential_routes(router, deps, manager, answer)
    return router


def _credential_routes(router: APIRouter, deps: MembershipHttp, manager: Any,
                       answer: Callable[[str], Awaitable[dict[str, Any]]]) -> None:
    """Password reset (3.3 of the Workbench guide) and clearing a sign-in lock."""

    @router.post("/{member_id}/password-reset")
    async def password_reset(member_id: str, body: ReasonBody, *,
                            principal: StaffPrincipal = manager) -> dict[str, Any]:
        """Queue a password reset notification (a reset code) to the member."""
        await deps.run(RequestPasswordReset(origin=deps.origin("RequestPasswordReset"),
                                            member_id=member_id, reason=body.reason,
                                            actor=staff_actor(principal)),
                       principal, "password.reset", member_id, body.reason)
        return await answer(member_id)

    @router.post("/{member_id}/unlock")
    async def unlock(member_id: str, body: ReasonBody, *,
                     principal: StaffPrincipal = manager) -> dict[str, Any]:
        """Clear a sign-in lock (timed or indefinite) and the failed sign-ins, with a reason."""
        await deps.run(UnlockMember(origin=deps.origin("UnlockMember"), member_id=member_id,
                                    reason=body.reason, actor=staff_actor(principal)),
                       principal, "member.unlock", member_id, body.reason)
        return await answer(member_id)
