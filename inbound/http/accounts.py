"""``GET /accounts/status``: an external system asks for one patient's account status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from engine.staff import Role
from inbound.http.auth import StaffAuth
from inbound.http.workbench.membership_deps import MembershipHttp

__all__ = ["STATUS_READERS", "accounts_router"]

STATUS_READERS = (Role.ACCOUNT_STATUS_CLIENT, Role.MEMBER_ACCOUNT_MANAGER)


def accounts_router(auth: StaffAuth, deps: MembershipHttp) -> APIRouter:
    router = APIRouter(prefix="/accounts", tags=["accounts"])

    @router.get("/status", dependencies=[Depends(auth.requires(*STATUS_READERS))])
    async def account_status(
        identifier: Annotated[str, Query(min_length=3, max_length=401,
                                         pattern=r"^[^|]+\|[^|]+$", description="AUTHORITY|VALUE")],
    ) -> dict[str, Any]:
        """Enrollment status, membership status and since when (No and null for a patient who
        is not a member; 404 for an identifier the MPI does not know)."""
        authority, value = identifier.split("|", 1)
        member = await deps.read(deps.queries.by_identifier, authority, value)
        if member is None:
            views = await deps.read(deps.search.by_identifier, authority, value)
            if not views:
                raise HTTPException(404, f"no patient with identifier {identifier}")
            return {"identifier": identifier, "member_id": None, "enrollment_status": "No",
                    "membership_status": None, "since": None}
        return {"identifier": identifier, "member_id": member.id,
                "enrollment_status": member.enrollment_status.value,
                "membership_status": member.membership_status.value,
                "since": member.status_since.isoformat()}

    return router
