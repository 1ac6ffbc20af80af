"""What the membership routes of the Workbench and /accounts need (wired at bootstrap)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import HTTPException

from engine.audit import AuditEntry, AuditLog
from engine.commands import Command, MessageOrigin, Outcome
from engine.domain.clock import Clock
from engine.enrollment_intake import EnrollmentIntake
from engine.errors import EngineError
from engine.letters import ActivationLetters
from engine.member_commands import Actor
from engine.staff import StaffPrincipal
from engine.store.member_queries import MemberQueries
from engine.store.notification_rows import NotificationRows
from inbound.http.errors import http_error
from mpi.search import MpiSearch

__all__ = ["MembershipHttp", "staff_actor"]

T = TypeVar("T")


def staff_actor(principal: StaffPrincipal) -> Actor:
    return Actor(type="staff", id=principal.id, name=principal.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class MembershipHttp:
    apply: Callable[[Command], Awaitable[Outcome]]
    queries: MemberQueries
    search: MpiSearch
    intake: EnrollmentIntake
    pool: Executor
    audit: AuditLog
    clock: Clock
    notifications: NotificationRows | None = None  # delivery shown on the member's details
    letters: ActivationLetters | None = None  # the printed activation letter

    async def off_loop(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run slow hashing work (a passphrase) on the hashing pool, never on the event loop."""
        return await asyncio.wrap_future(self.pool.submit(fn, *args, **kwargs))

    @staticmethod
    async def read(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a database read on asyncio's default threads (never behind hashing work)."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    @staticmethod
    def origin(kind: str) -> MessageOrigin:
        return MessageOrigin(channel="http", sender="workbench", control_id=str(uuid.uuid4()),
                             message_type=kind, facility="")

    async def run(self, command: Command, principal: StaffPrincipal, action: str,
                  member_id: str | None = None, reason: str = "") -> Outcome:
        """Apply a staff command; a refusal is written to the audit log, then answered."""
        try:
            return await self.apply(command)
        except EngineError as exc:
            await self.read(self.audit.append, AuditEntry(
                actor=principal.actor, action=action, outcome="refused",
                reason=f"{reason[:900]} | refused: {exc.reason[:900]}" if reason else exc.reason[:2000],
                member_id=member_id))
            raise http_error(exc) from exc

    @staticmethod
    def not_found(what: str) -> HTTPException:
        return HTTPException(404, f"no {what}")
