"""Staff bearer tokens on HTTP: one FastAPI dependency per set of roles a route accepts.

``StaffAuth(directory, audit).requires(Role.X, Role.Y)`` is a dependency that yields the
authenticated ``StaffPrincipal``, or answers

- 401 with ``WWW-Authenticate: Bearer realm="portalbridge"`` when the token is missing or
  not a bearer token, and with ``error="invalid_token"`` added when it is unknown or revoked;
- 403 naming the roles the route needs when the staff member holds none of them (the
  refusal is written to the audit log: it is a known person trying something);
- 503 with ``Retry-After`` when the directory cannot be read.

The dependency is a plain ``def``: FastAPI runs it in its thread pool, so the directory's
database lookup never blocks the event loop. ``fastapi.security.HTTPBearer`` reads the
header, which also documents the scheme in ``/openapi.json``. Tokens are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine.audit import AuditEntry, AuditLog
from engine.errors import TransientFailure
from engine.staff import Role, StaffDirectory, StaffPrincipal

__all__ = ["StaffAuth"]

log = logging.getLogger(__name__)

_REALM = 'Bearer realm="portalbridge"'
_BEARER = HTTPBearer(auto_error=False, scheme_name="staff token", bearerFormat="pbs_...",
                     description="A staff token from `portalbridge staff add NAME --role ROLE`.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


class StaffAuth:
    """Makes the role-checking dependencies of the staff routes."""

    def __init__(self, directory: StaffDirectory, audit: AuditLog | None = None) -> None:
        self._directory = directory
        self._audit = audit

    def requires(self, *roles: Role) -> Callable[..., StaffPrincipal]:
        """A dependency admitting staff with any of ``roles`` (administrators always)."""
        if not roles:
            raise ValueError("a route must name the roles it admits")
        needed = ", ".join(sorted({Role.ADMINISTRATOR, *roles}))

        def staff_principal(request: Request, credentials: Credentials) -> StaffPrincipal:
            principal = self._authenticate(request, credentials)
            if not principal.has_any(*roles):
                self._refused(request, principal, needed)
                raise HTTPException(403, f"{principal.name} holds none of the roles this needs: "
                                    f"{needed}")
            return principal

        return staff_principal

    def _authenticate(self, request: Request,
                      credentials: HTTPAuthorizationCredentials | None) -> StaffPrincipal:
        if credentials is None:
            raise HTTPException(401, "this needs a staff token: Authorization: Bearer <token> "
                                "(made by `portalbridge staff add`)", headers={"WWW-Authenticate": _REALM})
        try:
            principal = self._directory.authenticate(credentials.credentials)
        except TransientFailure as exc:
            log.warning("staff directory unavailable for %s: %s", request.url.path, exc.reason)
            raise HTTPException(503, "the staff directory is unavailable; try again shortly",
                                headers={"Retry-After": "5"}) from None
        if principal is None:
            log.info("unknown or revoked staff token refused: %s %s from %s", request.method,
                     request.url.path, request.client.host if request.client else "-")
            raise HTTPException(401, "the bearer token is unknown or revoked",
                                headers={"WWW-Authenticate": f'{_REALM}, error="invalid_token"'})
        return principal

    def _refused(self, request: Request, principal: StaffPrincipal, needed: str) -> None:
        log.info("%s refused %s %s: needs one of %s", principal.actor, request.method,
                 request.url.path, needed)
        if self._audit is None:
            return
        route = f"{request.method} {request.url.path}"[:200]
        try:
            self._audit.append(AuditEntry(actor=principal.actor, action="access.refused",
                                          outcome="refused", reason=f"needs one of: {needed}",
                                          detail={"route": route}))
        except TransientFailure as exc:  # the 403 stands whether or not it could be written
            log.warning("audit entry of a refused request not written: %s", exc.reason)
