"""The letter desk: activation letters from the member, the MPI and the sealed token.

Each letter takes the name and postal address from the MPI's best demographics, the token
from the member's sealed copy (the one Resend opens), and the passphrase when the policy sends
passphrases with the token and the member still has one to give: it is found, sealed, in the
enrollment's activation-token notification (a passphrase is kept nowhere else in clear form;
a member enrolled at the desk without any address chose theirs in front of the clerk, and
their letter says nothing of it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from engine.audit import AuditLog
from engine.domain.clock import Clock
from engine.errors import Conflict, NotFound
from engine.letters import LETTER_PRINTED, ActivationLetters, LetterProblem, PrintedLetters
from engine.notification_rules import NotificationRules
from engine.store.errors import classify_store_error
from engine.store.member_queries import MemberQueries
from engine.store.member_tables import members, notifications
from engine.store.members_sql import member_from_row
from membership.model import Member, MembershipStatus
from membership.tokens import SecretBox
from mpi.search import MpiSearch
from outbound.notify.letters import ActivationLetter, LetterPrinter, postal_recipient

__all__ = ["LetterDesk"]

_ACTIVATION = "activation_token"
_UNDELIVERED = frozenset({"dead", "bounced"})


class LetterDesk(ActivationLetters):
    """``ActivationLetters`` over the database, the MPI search and the secret box."""

    def __init__(self, *, database: Engine, search: MpiSearch, box: SecretBox, audit: AuditLog,
                 rules: NotificationRules, sends_passphrase: bool, clock: Clock,
                 printer: LetterPrinter | None = None) -> None:
        self._db = database
        self._members = MemberQueries(database.connect)
        self._search = search
        self._box = box
        self._audit = audit
        self._sends_passphrase = sends_passphrase
        self._clock = clock
        self._printer = printer or LetterPrinter(rules, now=clock.now)

    def letter(self, member_id: str) -> PrintedLetters:
        member = self._members.get(member_id)
        if member is None:
            raise NotFound(f"no member {member_id}")
        prepared = self._prepare(member)
        if isinstance(prepared, LetterProblem):
            raise Conflict(prepared.reason)
        return PrintedLetters(self._printer.render([prepared]), ((member.id, member.patient_id),))

    def letters(self, member_ids: Sequence[str]) -> PrintedLetters:
        letters: list[ActivationLetter] = []
        printed: list[tuple[str, str]] = []
        problems: list[LetterProblem] = []
        for member_id in member_ids:
            member = self._members.get(member_id)
            prepared = self._prepare(member) if member is not None else \
                LetterProblem(member_id, f"no member {member_id}")
            if isinstance(prepared, LetterProblem):
                problems.append(prepared)
            elif member is not None:
                letters.append(prepared)
                printed.append((member.id, member.patient_id))
        if not letters:
            raise Conflict("no letter to print" + "".join(f"; {p.member_id}: {p.reason}" for p in problems))
        return PrintedLetters(self._printer.render(letters), tuple(printed), tuple(problems))

    def owed(self) -> list[str]:
        now = self._clock.now()
        candidates = self._pending_with_valid_tokens(now)
        undelivered = self._all_undelivered({m.id: m for m in candidates})
        return [m.id for m in candidates
                if (m.printed_activation or m.id in undelivered) and not self._printed_since(m)]

    # -- one letter -------------------------------------------------------------------------

    def _prepare(self, member: Member) -> ActivationLetter | LetterProblem:
        """The letter's contents, or why there is none."""
        token = member.token
        if member.membership_status is not MembershipStatus.PENDING or token is None:
            return LetterProblem(member.id, f"member {member.id} is {member.membership_status.value}: "
                                 "only a pending member has an activation token to print")
        if token.expires_at < self._clock.now():
            return LetterProblem(member.id, f"the activation token of member {member.id} expired "
                                 f"at {token.expires_at.isoformat()}: renew or regenerate it first")
        view = self._search.get(member.patient_id)
        if view is None:
            return LetterProblem(member.id, f"the patient of member {member.id} is not in the MPI")
        try:
            name, address = postal_recipient(view.patient.best)
        except ValueError as exc:
            return LetterProblem(member.id, f"member {member.id}: {exc}")
        return ActivationLetter(member_id=member.id, locale=member.preferences.locale, name=name,
                                address_lines=address, token=self._box.open(token.sealed),
                                expires_at=token.expires_at, passphrase=self._passphrase(member))

    def _passphrase(self, member: Member) -> str | None:
        if not (self._sends_passphrase and member.passphrase_hash):
            return None
        for context in self._activation_contexts(member.id):
            sealed = context.get("passphrase")
            if isinstance(sealed, dict) and "$sealed" in sealed:
                return self._box.open(sealed["$sealed"])
        return None

    def _activation_contexts(self, member_id: str) -> list[dict[str, object]]:
        query = (select(notifications.c.context).where(notifications.c.member_id == member_id,
                                                       notifications.c.kind == _ACTIVATION)
                 .order_by(notifications.c.created_at.desc()))
        try:
            with self._db.connect() as conn:
                return [orjson.loads(text) for text in conn.execute(query).scalars()]
        except SQLAlchemyError as exc:
            raise classify_store_error(exc) from exc

    # -- letters owed -----------------------------------------------------------------------

    def _pending_with_valid_tokens(self, now: datetime) -> list[Member]:
        query = (select(members).where(members.c.membership_status == MembershipStatus.PENDING.value,
                                       members.c.token_digest.is_not(None),
                                       members.c.token_expires_at >= now)
                 .order_by(members.c.token_issued_at, members.c.id))
        try:
            with self._db.connect() as conn:
                return [member_from_row(row) for row in conn.execute(query).mappings()]
        except SQLAlchemyError as exc:
            raise classify_store_error(exc) from exc

    def _all_undelivered(self, candidates: dict[str, Member]) -> set[str]:
        """Members whose every activation-token notification for the current token died or
        bounced (a member with none sent is not among them: printed activation covers those)."""
        if not candidates:
            return set()
        query = select(notifications.c.member_id, notifications.c.status,
                       notifications.c.created_at).where(
            notifications.c.kind == _ACTIVATION, notifications.c.member_id.in_(list(candidates)))
        states: dict[str, set[str]] = {}
        try:
            with self._db.connect() as conn:
                for member_id, status, created_at in conn.execute(query):
                    token = candidates[member_id].token
                    if token is not None and created_at >= token.issued_at:
                        states.setdefault(member_id, set()).add(status)
        except SQLAlchemyError as exc:
            raise classify_store_error(exc) from exc
        return {member_id for member_id, seen in states.items() if seen <= _UNDELIVERED}

    def _printed_since(self, member: Member) -> bool:
        issued = member.token.issued_at if member.token is not None else None
        return bool(self._audit.query(member_id=member.id, action=LETTER_PRINTED, since=issued,
                                      limit=1))
