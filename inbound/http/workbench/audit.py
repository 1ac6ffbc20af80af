"""``GET /workbench/audit``: the audit log, filtered, newest first (JSON)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from engine.audit import AuditLog, parse_since
from engine.domain.clock import Clock
from engine.errors import TransientFailure
from engine.staff import Role
from inbound.http.auth import StaffAuth

__all__ = ["AUDIT_READERS", "MAX_AUDIT_LIMIT", "audit_router"]

#: Who may read the audit log.
AUDIT_READERS = (Role.ADMINISTRATOR, Role.MEMBER_ACCOUNT_MANAGER)
MAX_AUDIT_LIMIT = 1000


def audit_router(auth: StaffAuth, audit: AuditLog, clock: Clock) -> APIRouter:
    """The audit log for administrators and Member Account Managers."""
    router = APIRouter(prefix="/workbench", tags=["workbench"])
    # A route-level dependency: the reader's identity is not needed, only the role check.
    readers = [Depends(auth.requires(*AUDIT_READERS))]

    @router.get("/audit", dependencies=readers)
    def read_audit(
        member: Annotated[str | None, Query(max_length=64, description="a member id")] = None,
        actor: Annotated[str | None, Query(max_length=200, description=(
            "staff:NAME, cli:LOGIN, ...; a trailing * matches by prefix"))] = None,
        action: Annotated[str | None, Query(max_length=64, description=(
            "mpi.read, staff.add, ...; a trailing * matches by prefix (staff.*)"))] = None,
        since: Annotated[str | None, Query(max_length=64, description=(
            "an ISO 8601 time, or a duration back from now: 30m, 1h, 7d"))] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_LIMIT)] = 100,
    ) -> dict[str, Any]:
        """Audit entries matching every filter given, newest first."""
        try:
            start = parse_since(since, clock.now()) if since else None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        try:
            records = audit.query(member_id=member, actor=actor, action=action, since=start,
                                  limit=limit)
        except TransientFailure:
            raise HTTPException(503, "the audit log is unavailable; try again shortly",
                                headers={"Retry-After": "5"}) from None
        return {"count": len(records), "entries": [record.to_dict() for record in records]}

    return router
