"""``GET /workbench/members/{id}/activation-letter``: the printed activation letter (PDF).

For a Direct Enrollment User or a Member Account Manager, with a reason: the letter holds the
activation token, so printing it is written to the audit log (``letter.print``, with the
member and patient) before the PDF is served, and a refusal is audited too. The answer is
never cached.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from engine.audit import AuditEntry
from engine.errors import EngineError
from engine.letters import LETTER_PRINTED
from engine.staff import Role, StaffPrincipal
from inbound.http.auth import StaffAuth, audit_before_serving
from inbound.http.errors import http_error
from inbound.http.workbench.membership_deps import MembershipHttp

__all__ = ["LETTER_PRINTERS", "letters_router"]

LETTER_PRINTERS = (Role.DIRECT_ENROLLMENT_USER, Role.MEMBER_ACCOUNT_MANAGER)


def letters_router(auth: StaffAuth, deps: MembershipHttp) -> APIRouter:
    router = APIRouter(prefix="/workbench/members", tags=["workbench"])
    printer = Depends(auth.requires(*LETTER_PRINTERS))

    @router.get("/{member_id}/activation-letter", response_class=Response,
                responses={200: {"content": {"application/pdf": {}}}})
    async def activation_letter(
        member_id: str,
        reason: Annotated[str, Query(min_length=1, max_length=1000,
                                     description="why it is printed (audit log)")],
        *, principal: StaffPrincipal = printer,
    ) -> Response:
        """The member's activation letter, ready to print and mail in a #10 window envelope."""
        if deps.letters is None:  # pragma: no cover - wired by the composition root
            raise deps.not_found("letter printer in this process")
        try:
            printed = await deps.read(deps.letters.letter, member_id)
        except EngineError as exc:
            await deps.read(deps.audit.append, AuditEntry(
                actor=principal.actor, action=LETTER_PRINTED, outcome="refused",
                reason=f"{reason[:900]} | refused: {exc.reason[:900]}",
                member_id=member_id[:64]))
            raise http_error(exc) from exc
        [(member, patient)] = printed.printed
        await deps.read(audit_before_serving, deps.audit, AuditEntry(
            actor=principal.actor, action=LETTER_PRINTED, outcome="success", reason=reason,
            member_id=member, patient_id=patient, detail={"pages": "1"}))
        return Response(printed.pdf, media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="activation-letter-{member}.pdf"',
            "Cache-Control": "no-store"})

    return router
