"""Signing in (specification 5.1-5.3, 4.3): sessions, two-factor codes, the member's own
account and profile, password reset requests.

- ``POST /portal/sessions`` {username, password}: 201 with a session token, 202 with a
  two-factor challenge, 401 (the one generic answer for an unknown username or a wrong
  password, locked or not), 423 (valid credentials, account locked: how to fix it),
  403 (inactive account; an expired password, with a token to choose a new one).
- ``POST /portal/sessions/otp`` {challenge, code}: 201 with a session token, or 401.
- ``DELETE /portal/sessions/current``, ``GET /portal/me``, ``PUT /portal/profile``: with
  ``Authorization: Bearer <session token>``.
- ``POST /portal/password-resets`` {username} or {email}: always 202, the same answer;
  ``POST /portal/password-resets/{token}`` {password}: choose the new password.

An unknown username is verified against a decoy hash made with the preferred hasher, so it
costs one hash verification of the same cost as a wrong password, and it is audited through
the writer as a wrong password is, so it costs the same commit too. The verification runs on
the hashing pool; a sign-in that changes nothing (no failures to forget, no challenge, no
rehash) does not go through the writer at all: it only inserts its session.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field, model_validator

from engine.errors import EngineError
from engine.member_commands import (
    Actor,
    ChangePassword,
    RequestPasswordReset,
    SignIn,
    SignInResult,
    UpdateProfile,
    VerifyOtp,
)
from engine.member_handlers import view_of
from inbound.http.portal import (
    PortalBody,
    PortalCalls,
    PortalDependencies,
    PreferencesBody,
    Secret,
    complete_password_reset,
    new_password,
    origin,
    password_validators,
)
from membership.model import Member, MembershipStatus
from membership.passwords import Verification
from mpi.model import Address

__all__ = ["signin_router"]

_BEARER = HTTPBearer(auto_error=False, scheme_name="member session",
                     description="The session token from POST /portal/sessions.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
RESET_ANSWER = ("if an account matches, a link to choose a new password was sent to its "
                "contact address")
Line = Annotated[str, Field(max_length=200)]


class SignInBody(PortalBody):
    username: Annotated[str, Field(min_length=1, max_length=150)]
    password: Secret


class OtpBody(PortalBody):
    challenge: Annotated[str, Field(min_length=1, max_length=64)]
    code: Annotated[str, Field(min_length=1, max_length=12, pattern=r"^\s*[0-9]+\s*$")]


class ResetRequestBody(PortalBody):
    username: Annotated[str, Field(min_length=1, max_length=150)] | None = None
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ResetRequestBody:
        if (self.username is None) == (self.email is None):
            raise ValueError("give either username or email")
        return self


class NewPasswordBody(PortalBody):
    password: Secret


class PasswordChangeBody(PortalBody):
    current_password: Secret
    new_password: Secret


class AddressBody(PortalBody):
    lines: Annotated[list[Line], Field(max_length=4)] = []
    city: Line = ""
    state: Line = ""
    postal_code: Annotated[str, Field(max_length=20)] = ""
    country: Annotated[str, Field(max_length=64)] = ""

    def value(self) -> Address:
        return Address(lines=tuple(self.lines), city=self.city, state=self.state,
                       postal_code=self.postal_code, country=self.country, use="home")


class ProfileBody(PreferencesBody):
    address: AddressBody | None = None


def _session_answer(token: str, member_id: str, deps: PortalDependencies) -> dict[str, Any]:
    policy = deps.sessions.policy
    return {"session": token, "member_id": member_id, "token_type": "Bearer",
            "idle_timeout_seconds": int(policy.idle.total_seconds()),
            "absolute_timeout_seconds": int(policy.absolute.total_seconds())}


def _needs_writer(member: Member, verified: bool, must_update: bool, deps: PortalDependencies) -> bool:
    """Whether this sign-in changes something stored (else it only starts a session)."""
    now, policies = deps.clock.now(), deps.policies
    return (not verified or must_update or not member.lockout.clean or policies.two_factor.enabled
            or member.membership_status is not MembershipStatus.ACTIVE
            or member.password_expired(now, policies.password.expire_after))


def _verify(deps: PortalDependencies, username: str,
            password: str) -> tuple[Member | None, Verification, str | None]:
    """The member, the verification of ``password`` (against the decoy hash when there is no
    such member or password) and, when the sign-in changes nothing stored, its new session:
    one job on the hashing pool and one database connection, so a plain sign-in changes
    threads once and checks a connection out once."""
    with deps.sessions.connection() as conn:
        member = deps.queries.by_username_on(conn, username)
        conn.rollback()  # no transaction stays open during the hash
        stored = member.password_hash if member is not None else None
        check = deps.hashers.check(password, stored or deps.decoy_hash)
        if member is None or stored is None or _needs_writer(member, check.ok, check.must_update, deps):
            return member, check, None
        return member, check, deps.sessions.start_on(conn, member.id, deps.clock.now())


def _refusal(result: SignInResult, deps: PortalDependencies) -> HTTPException:
    messages = deps.policies.lockout.messages
    if result.result == "locked":
        until = result.locked_until
        text = messages.timed.replace("{until}", until.isoformat()) if until else messages.indefinite
        return HTTPException(423, {"message": text, "locked_until": until.isoformat() if until else None,
                                   "unlock": "wait until locked_until, or reset the password"
                                   if until else "reset the password"})
    if result.result == "inactive":
        return HTTPException(403, {"message": "the account is not active: ask the help desk"})
    if result.result == "expired":
        return HTTPException(403, {
            "message": "the password expired: choose a new one to sign in",
            "password_change_token": result.change_token,
            "complete_with": "POST /portal/password-resets/{password_change_token} {password}"})
    return HTTPException(401, messages.failed)


def signin_router(deps: PortalDependencies) -> APIRouter:
    """The ``/portal`` routes of sessions, two-factor codes, the account and reset requests."""
    router = APIRouter(prefix="/portal", tags=["portal"])
    calls = PortalCalls(deps)
    session = _session_routes(router, calls)
    _account_routes(router, calls, session)
    return router


def _session_routes(router: APIRouter, calls: PortalCalls) -> Any:
    """Sign in, the code step, sign out; returns the dependency naming the signed-in member."""
    deps = calls.deps

    async def finish(result: SignInResult, response: Response) -> dict[str, Any]:
        if result.result == "signed_in":
            token = await calls.read(deps.sessions.start, result.member_id, deps.clock.now())
            return _session_answer(token, result.member_id, deps)
        if result.result == "challenge":
            response.status_code = 202
            return {"challenge": result.challenge, "member_id": result.member_id,
                    "expires_in_seconds": int(deps.policies.two_factor.valid_for.total_seconds()),
                    "complete_with": "POST /portal/sessions/otp {challenge, code}"}
        raise _refusal(result, deps)

    @router.post("/sessions", status_code=201)
    async def sign_in(body: SignInBody, response: Response) -> dict[str, Any]:
        """Sign in with username and password (then a code, with two-factor on)."""
        member, check, session = await calls.off_loop(_verify, deps, body.username, body.password)
        if member is not None and session is not None:
            return _session_answer(session, member.id, deps)
        stored = member.password_hash if member is not None else None
        new_hash = await calls.off_loop(deps.hashers.hash, body.password) \
            if stored and check.ok and check.must_update else None
        # An unknown username is written (to the audit log) like a wrong password: one hash
        # verification and one commit either way, so neither answer comes sooner.
        outcome = await calls.apply(SignIn(
            origin=origin("SignIn"), member_id=member.id if member is not None and stored else "",
            verified=check.ok and stored is not None, checked_against=stored or "",
            new_hash=new_hash))
        return await finish(outcome.member, response)

    @router.post("/sessions/otp", status_code=201)
    async def verify_code(body: OtpBody, response: Response) -> dict[str, Any]:
        """The second step: the challenge of the 202 answer and the code received."""
        outcome = await calls.apply(VerifyOtp(origin=origin("VerifyOtp"), challenge=body.challenge,
                                              code=body.code.strip()))
        result: SignInResult = outcome.member
        if result.result != "signed_in":
            raise HTTPException(401, "the code is not valid (wrong, used, or expired): try again, "
                                "or sign in again for a new code")
        return await finish(result, response)

    async def signed_in(credentials: Credentials) -> str:
        member_id = None
        if credentials is not None and credentials.scheme.lower() == "bearer":
            member_id = await calls.read(deps.sessions.use, credentials.credentials, deps.clock.now())
        if member_id is None:
            raise HTTPException(401, "sign in first: Authorization: Bearer <session token>",
                                headers={"WWW-Authenticate": 'Bearer realm="portal"'})
        return str(member_id)

    @router.delete("/sessions/current", status_code=204)
    async def sign_out(credentials: Credentials, member_id: str = Depends(signed_in)) -> Response:
        """End this session."""
        assert credentials is not None  # signed_in checked it
        await calls.read(deps.sessions.end, credentials.credentials)
        return Response(status_code=204)

    return signed_in


def _account_routes(router: APIRouter, calls: PortalCalls, signed_in: Any) -> None:
    """The member's account and profile; password reset requests and completion."""
    deps = calls.deps
    validators = password_validators(deps.policies)
    session = Depends(signed_in)

    @router.get("/me")
    async def me(member_id: str = session) -> dict[str, Any]:
        """The member's own account: statuses, username, preferences and best demographics."""
        return await _account(calls, member_id)

    @router.put("/profile")
    async def profile(body: ProfileBody, member_id: str = session) -> dict[str, Any]:
        """Change address, e-mail, mobile, carrier, language or communication preference, as
        far as ``membership.profile_updates`` allows; a changed e-mail or mobile is told to
        the old one."""
        given = body.model_dump(exclude_unset=True)
        refused = sorted(set(given) - deps.policies.profile.editable)
        if refused:
            raise HTTPException(403, f"these details cannot be changed here: {', '.join(refused)} "
                                "(ask the help desk)")
        preferences = PreferencesBody(**body.model_dump(exclude={"address"})).value()
        await calls.apply(UpdateProfile(origin=origin("UpdateProfile"), member_id=member_id,
                                        preferences=preferences,
                                        address=body.address.value() if body.address else None))
        return await _account(calls, member_id)

    @router.put("/password")
    async def change_password(body: PasswordChangeBody, credentials: Credentials,
                              member_id: str = session) -> dict[str, Any]:
        """Change the password: the current one (a wrong one counts as a failed sign-in), and
        a new one passing the whole policy. Every other session of the member ends."""
        member = await calls.read(deps.queries.get, member_id)
        if member is None or member.password_hash is None:
            raise HTTPException(401, "the account no longer exists")
        current = await calls.off_loop(deps.hashers.check, body.current_password, member.password_hash)
        chosen = await new_password(calls, validators, member, body.new_password)
        outcome = await calls.apply(ChangePassword(
            origin=origin("ChangePassword"), member_id=member_id, verified=current.ok,
            checked_against=member.password_hash, password_hash=chosen.hash,
            history_checked_against=chosen.history, reused=chosen.reused))
        if outcome.member.result != "signed_in":
            raise HTTPException(401, "the current password is not correct")
        assert credentials is not None  # the session dependency checked it
        await calls.read(deps.sessions.end_others, member_id, credentials.credentials)
        return {"member_id": member_id, "password_changed": True}

    @router.post("/password-resets", status_code=202)
    async def request_reset(body: ResetRequestBody) -> dict[str, Any]:
        """Send a reset link to the account with this username or e-mail (the same answer
        whether or not one exists)."""
        if body.username is not None:
            found = await calls.read(deps.queries.by_username, body.username)
            members = [found] if found is not None else []
        else:
            members = await calls.read(deps.queries.by_email, body.email)
        for member in members:
            if member.membership_status is MembershipStatus.ACTIVE and member.password_hash:
                await _reset(calls, member)
        return {"message": RESET_ANSWER}

    @router.post("/password-resets/{token}")
    async def complete_reset(token: Annotated[str, Path(max_length=64)],
                             body: NewPasswordBody) -> dict[str, Any]:
        """Choose the new password (the whole password policy, history included); the link
        works once; every session of the member ends; an indefinite lock is cleared."""
        return await complete_password_reset(calls, validators, token, body.password)


async def _reset(calls: PortalCalls, member: Member) -> None:
    try:
        await calls.deps.apply(RequestPasswordReset(
            origin=origin("RequestPasswordReset"), member_id=member.id,
            reason="requested by the member", actor=Actor(type="member", id=member.id)))
    except EngineError:  # the member changed meanwhile: the answer stays the same
        return


async def _account(calls: PortalCalls, member_id: str) -> dict[str, Any]:
    deps = calls.deps
    member = await calls.read(deps.queries.get, member_id)
    if member is None:
        raise HTTPException(401, "the account no longer exists")
    patient = await calls.read(deps.search.get, member.patient_id)
    best = dict(patient.patient.best.to_dict()) if patient is not None else {}  # shared: copy
    p, view = member.preferences, view_of(member)
    if member.address is not None:  # the member's own address comes first where best is shown
        best["addresses"] = [member.address.to_dict(), *best.get("addresses", [])]
    return {"member_id": member.id, "username": member.username,
            "enrollment_status": view.enrollment_status, "membership_status": view.membership_status,
            "status_since": view.status_since.isoformat(),
            "preferences": {"email": p.email, "mobile": p.mobile, "carrier": p.carrier,
                            "communication": p.communication.value, "locale": p.locale},
            "demographics": best,
            "password_expires": _expires(member, deps)}


def _expires(member: Member, deps: PortalDependencies) -> str | None:
    after, changed = deps.policies.password.expire_after, member.password_changed_at
    return (changed + after).isoformat() if after is not None and changed is not None else None
