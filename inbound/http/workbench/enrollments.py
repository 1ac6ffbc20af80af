"""Enrollment in the Workbench: patient search with an Enrolled column (Direct Enrollment
User), point-of-care enrollment, and automated enrollment over HTTP (one or many requests)."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query

from engine.commands import Outcome
from engine.enrollment_intake import PreparedRequest
from engine.errors import EngineError
from engine.staff import Role, StaffPrincipal
from inbound.http.auth import StaffAuth
from inbound.http.errors import http_error
from inbound.http.workbench.membership_deps import MembershipHttp, staff_actor
from membership.policies import EnrollmentMode

__all__ = ["AUTOMATED_ENROLLERS", "ENROLLERS", "MAX_BATCH", "enrollment_router"]

ENROLLERS = (Role.DIRECT_ENROLLMENT_USER,)
AUTOMATED_ENROLLERS = (Role.ENROLLMENT_REQUEST_AGENT, Role.DIRECT_ENROLLMENT_USER)
MAX_BATCH = 1000
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def enrollment_router(auth: StaffAuth, deps: MembershipHttp) -> APIRouter:
    router = APIRouter(prefix="/workbench", tags=["workbench"])
    # Defaults, not Annotated[...]: FastAPI resolves postponed annotations from module globals.
    enroller = Depends(auth.requires(*ENROLLERS))
    automated = Depends(auth.requires(*AUTOMATED_ENROLLERS))

    @router.get("/patients")
    async def find_patients(
        identifier: Annotated[str | None, Query(max_length=401, description="AUTHORITY|VALUE")] = None,
        family: Annotated[str | None, Query(max_length=200)] = None,
        birthdate: Annotated[str | None, Query(description="YYYY-MM-DD")] = None,
        facility: Annotated[str | None, Query(max_length=64)] = None,
        *, principal: StaffPrincipal = enroller,
    ) -> dict[str, Any]:
        """Patients of the MPI with an Enrolled (Yes/No) column, to pick one to enroll."""
        if identifier:
            authority, _, value = identifier.rpartition("|")
            views = await deps.read(deps.search.by_identifier, authority or None, value, facility)
        elif family or birthdate:
            if birthdate and not _DATE.match(birthdate):
                raise HTTPException(400, "birthdate must be YYYY, YYYY-MM or YYYY-MM-DD")
            views = await deps.read(deps.search.by_name_and_birth_date, family, birthdate, facility)
        else:
            raise HTTPException(400, "give identifier=AUTHORITY|VALUE, or family and/or birthdate")
        members = await deps.read(deps.queries.by_patients, [v.patient.id for v in views])
        rows = []
        for view in views:
            member = members.get(view.patient.id)
            rows.append({**view.to_dict(), "enrolled": "Yes" if member else "No",
                         "member_id": member.id if member else None,
                         "membership_status": member.membership_status.value if member else None})
        return {"total": len(rows), "patients": rows}

    @router.post("/enrollments")
    async def enroll(body: Annotated[dict[str, Any], Body()], *,
                     principal: StaffPrincipal = enroller) -> dict[str, Any]:
        """Point-of-care enrollment: 409 with the reason when already pending or active."""
        prepared = await deps.off_loop(deps.intake.prepare, body, deps.origin("x").control_id,
                                       mode=EnrollmentMode.POINT_OF_CARE,
                                       actor=staff_actor(principal), channel="http")
        if prepared.error is not None or prepared.command is None:
            raise http_error(prepared.error or EngineError("not prepared"))
        outcome = await deps.run(prepared.command, principal, "member.enroll")
        reply = prepared.reply(outcome, None)
        return {key: reply[key] for key in ("member_id", "enrollment_status", "membership_status",
                                            "printed_activation")} | {"status": reply["status"]}

    @router.post("/enrollments/automated")
    async def enroll_automated(
        body: Annotated[dict[str, Any] | list[dict[str, Any]], Body()],
        *, principal: StaffPrincipal = automated,
    ) -> Any:
        """Automated enrollment for systems that prefer HTTP: one request or a JSON array; each
        answered as the queue answers it (accepted, rejected or duplicate)."""
        requests = body if isinstance(body, list) else [body]
        if len(requests) > MAX_BATCH:
            raise HTTPException(413, f"at most {MAX_BATCH} requests per call")
        prepared: list[PreparedRequest] = await deps.read(  # it waits for hashing on the pool
            deps.intake.prepare_many, [(r, deps.origin("x").control_id) for r in requests],
            mode=EnrollmentMode.AUTOMATED, actor=None, channel="http")
        ready = [r for r in prepared if r.command is not None]
        # Submitted together, so they share group commits.
        results = await asyncio.gather(*(deps.apply(r.command) for r in ready if r.command),
                                       return_exceptions=True)
        answers = dict(zip((id(r) for r in ready), results, strict=True))
        replies = [_reply(request, answers.get(id(request))) for request in prepared]
        return replies if isinstance(body, list) else replies[0]

    return router


def _reply(request: PreparedRequest, result: object) -> dict[str, Any]:
    if isinstance(result, EngineError):
        return request.reply(None, result)
    if isinstance(result, BaseException):
        return request.reply(None, EngineError(f"internal error ({type(result).__name__})"))
    return request.reply(result if isinstance(result, Outcome) else None, None)
