"""The engine's errors as HTTP answers for the JSON APIs (/portal, /workbench, /accounts)."""

from __future__ import annotations

from fastapi import HTTPException

from engine.errors import (
    AlreadyMember,
    Conflict,
    EngineError,
    NotFound,
    PolicyRefused,
    RejectedMessage,
    TransientFailure,
)

__all__ = ["http_error"]


def http_error(error: EngineError) -> HTTPException:
    """404 unknown, 409 state conflict, 422 policy (with every problem), 400 other refusals,
    503 try again later, 500 anything else."""
    if isinstance(error, PolicyRefused):
        return HTTPException(422, {"message": error.reason, "problems": list(error.problems)})
    if isinstance(error, AlreadyMember):
        member = error.member
        return HTTPException(409, {"message": error.reason,
                                   "member_id": getattr(member, "member_id", None),
                                   "membership_status": getattr(member, "membership_status", None)})
    for kind, status in ((NotFound, 404), (Conflict, 409), (RejectedMessage, 400),
                         (TransientFailure, 503)):
        if isinstance(error, kind):
            return HTTPException(status, error.reason)
    return HTTPException(500, "internal error")
