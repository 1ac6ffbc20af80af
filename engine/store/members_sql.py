"""Members and notifications on SQL: an identity map over the unit of work's connection,
loaded in bulk and written with one executemany per table at commit."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, func, or_, select

from engine.notifications import Notification, NotificationOutbox
from engine.store.member_tables import members, notifications
from membership.lockout import LockoutState
from membership.model import (
    Communication,
    EnrollmentStatus,
    Member,
    MembershipStatus,
    Preferences,
)
from membership.otp import OtpChallenge
from membership.repository import MemberRepository
from membership.tokens import ActivationToken, SecretBox
from mpi.bulk import insert_rows, update_rows
from mpi.locks import PATIENTS_HOLDING, Rider
from mpi.model import Address

__all__ = ["SqlMemberRepository", "SqlNotificationOutbox", "member_from_row", "member_row"]

#: The members of the patients a locked prefetch locks (its statement's parameters).
_MEMBERS_OF_HOLDERS = f"SELECT * FROM members WHERE patient_id IN ({PATIENTS_HOLDING})"  # noqa: S608


class SqlMemberRepository(MemberRepository):
    """``MemberRepository`` over one connection inside an open transaction."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection
        self._by_id: dict[str, Member] = {}
        self._by_patient: dict[str, str | None] = {}
        self._patient_of: dict[str, str] = {}
        self._absent: set[tuple[str, str]] = set()  # (column, value) known to match no member
        self._new: dict[str, Member] = {}
        self._dirty: dict[str, Member] = {}
        self._ride = False  # read members with the index's next locked prefetch

    def get(self, member_id: str) -> Member | None:
        if member_id not in self._by_id:
            self._load(members.c.id == member_id)
        return self._by_id.get(member_id)

    def by_patient(self, patient_id: str) -> Member | None:
        if patient_id not in self._by_patient:
            self.prefetch_patients([patient_id])
        member_id = self._by_patient.get(patient_id)
        return self._by_id[member_id] if member_id else None

    def prefetch_patients(self, patient_ids: Iterable[str]) -> None:
        wanted = [p for p in set(patient_ids) if p not in self._by_patient]
        if not wanted:
            return
        for patient_id in wanted:
            self._by_patient[patient_id] = None
        self._load(members.c.patient_id.in_(wanted))

    def prefetch_patients_with_index(self) -> None:
        self._ride = True

    def riders(self) -> list[Rider]:
        """The read the index's next locked prefetch carries for this repository, if asked."""
        if not self._ride:
            return []
        self._ride = False
        return [(_MEMBERS_OF_HOLDERS, self._take_holders)]

    def _take_holders(self, rows: list[dict[str, Any]], patient_ids: set[str]) -> None:
        for patient_id in patient_ids:
            self._by_patient.setdefault(patient_id, None)
        for row in rows:
            if row["id"] not in self._by_id:
                self._remember(member_from_row(row))

    def patient_created(self, patient_id: str) -> None:
        # A member added in this unit of work is already in the map (``_remember``).
        self._by_patient.setdefault(patient_id, None)

    def by_token(self, digest: str) -> Member | None:
        return self._find("token_digest", digest,
                          lambda m: m.token is not None and m.token.digest == digest)

    def by_reset_token(self, digest: str) -> Member | None:
        return self._find("reset_digest", digest,
                          lambda m: m.reset is not None and m.reset.digest == digest)

    def by_otp(self, digest: str) -> Member | None:
        return self._find("otp_digest", digest,
                          lambda m: m.otp is not None and m.otp.digest == digest)

    def by_username(self, username: str) -> Member | None:
        key = username.casefold()
        return self._find("username_key", key,
                          lambda m: m.username is not None and m.username.casefold() == key)

    def prefetch_tokens(self, digests: Iterable[str], usernames: Iterable[str]) -> None:
        """Members by these token digests and usernames, in one query; misses remembered."""
        digests, keys = set(digests), {u.casefold() for u in usernames}
        if not digests and not keys:
            return
        self._load(or_(members.c.token_digest.in_(digests), members.c.username_key.in_(keys)))
        found_digests = {m.token.digest for m in self._by_id.values() if m.token}
        found_keys = {m.username.casefold() for m in self._by_id.values() if m.username}
        self._absent.update(("token_digest", d) for d in digests - found_digests)
        self._absent.update(("username_key", k) for k in keys - found_keys)

    def _find(self, column: str, value: str, test: Any) -> Member | None:
        known = next((m for m in self._by_id.values() if test(m)), None)
        if known is not None or (column, value) in self._absent:
            return known
        self._load(members.c[column] == value)
        return next((m for m in self._by_id.values() if test(m)), None)

    def add(self, member: Member) -> None:
        self._new[member.id] = member
        self._remember(member)

    def changed(self, member: Member) -> None:
        if member.id not in self._new:
            self._dirty[member.id] = member
        self._remember(member)  # its patient may have changed (a merge)

    def count_by_status(self) -> dict[str, int]:
        rows = self._conn.execute(select(members.c.membership_status, func.count())
                                  .group_by(members.c.membership_status))
        return {row[0]: row[1] for row in rows}

    def flush(self, now: datetime) -> None:
        insert_rows(self._conn, members, [member_row(m, now) for m in self._new.values()])
        update_rows(self._conn, members, "id", [member_row(m, now) for m in self._dirty.values()])
        for member in (*self._new.values(), *self._dirty.values()):
            member.version += 1
        self._new.clear()
        self._dirty.clear()

    def _load(self, where: Any) -> None:
        for row in self._conn.execute(select(members).where(where)).mappings():
            if row["id"] not in self._by_id:
                self._remember(member_from_row(row))

    def _remember(self, member: Member) -> None:
        self._by_id[member.id] = member
        before = self._patient_of.get(member.id)
        if before is not None and before != member.patient_id:
            self._by_patient[before] = None
        self._by_patient[member.patient_id] = member.id
        self._patient_of[member.id] = member.patient_id


class SqlNotificationOutbox(NotificationOutbox):
    """Notification rows, secrets sealed, inserted in bulk at commit."""

    def __init__(self, connection: Connection, box: SecretBox | None) -> None:
        self._conn = connection
        self._box = box
        self._pending: list[dict[str, Any]] = []

    def add(self, notification: Notification) -> None:
        self._pending.append(notification_row(notification, self._box))

    def flush(self) -> None:
        insert_rows(self._conn, notifications, self._pending)
        self._pending = []


def notification_row(n: Notification, box: SecretBox | None) -> dict[str, Any]:
    """The stored row: each secret context value replaced by ``{"$sealed": ...}``."""
    context: dict[str, object] = dict(n.context)
    for name in n.secrets:
        if context.get(name):
            if box is None:
                raise RuntimeError("a notification carries a secret, and no secret box is configured")
            context[name] = {"$sealed": box.seal(str(context[name]))}
    return {"id": n.id, "member_id": n.member_id, "kind": n.kind, "channel": n.channel,
            "recipient": n.recipient[:254], "carrier": n.carrier, "locale": n.locale[:16],
            "context": orjson.dumps(context).decode(), "status": "pending", "attempts": 0,
            "next_attempt_at": None, "last_error": None, "created_at": n.created_at,
            "sent_at": None}


def _token(row: Any, prefix: str, digest: str) -> ActivationToken | None:
    if row[digest] is None:
        return None
    return ActivationToken(digest=row[digest], sealed=row[f"{prefix}_sealed"],
                           issued_at=_utc(row[f"{prefix}_issued_at"]),
                           expires_at=_utc(row[f"{prefix}_expires_at"]),
                           failures=row.get("token_failures", 0) if prefix == "token" else 0,
                           first_failure_at=_opt(row.get("token_first_failure_at"))
                           if prefix == "token" else None,
                           locked_until=_opt(row.get("token_locked_until")) if prefix == "token" else None)


def member_from_row(row: Any) -> Member:
    """A ``Member`` from a ``members`` row mapping."""
    return Member(
        id=row["id"], patient_id=row["patient_id"],
        enrollment_status=EnrollmentStatus(row["enrollment_status"]),
        membership_status=MembershipStatus(row["membership_status"]),
        status_since=_utc(row["status_since"]),
        preferences=Preferences(email=row["email"], mobile=row["mobile"], carrier=row["carrier"],
                                communication=Communication(row["communication"]),
                                locale=row["locale"]),
        proxy_only=bool(row["proxy_only"]), mode=row["mode"], enrolled_by=row["enrolled_by"],
        enrolled_at=_utc(row["enrolled_at"]), token=_token(row, "token", "token_digest"),
        passphrase_hash=row["passphrase_hash"], printed_activation=bool(row["printed_activation"]),
        username=row["username"], password_hash=row["password_hash"],
        password_history=tuple(orjson.loads(row["password_history"])),
        password_changed_at=_opt(row["password_changed_at"]),
        reset=_token(row, "reset", "reset_digest"), activated_at=_opt(row["activated_at"]),
        lockout=_lockout(row.get("lockout_state")), otp=_otp(row),
        password_expired_at=_opt(row.get("password_expired_at")), address=_address(row.get("address")),
        version=row["version"])


def member_row(m: Member, now: datetime) -> dict[str, Any]:
    """The ``members`` row of ``m`` (its version moves on by one)."""
    token, reset, p = m.token, m.reset, m.preferences
    return {
        "id": m.id, "patient_id": m.patient_id, "enrollment_status": m.enrollment_status.value,
        "membership_status": m.membership_status.value, "status_since": m.status_since,
        "email": p.email, "mobile": p.mobile, "carrier": p.carrier,
        "communication": p.communication.value, "locale": p.locale, "proxy_only": m.proxy_only,
        "mode": m.mode, "enrolled_by": m.enrolled_by, "enrolled_at": m.enrolled_at,
        "printed_activation": m.printed_activation,
        "token_digest": token.digest if token else None, "token_sealed": token.sealed if token else None,
        "token_issued_at": token.issued_at if token else None,
        "token_expires_at": token.expires_at if token else None,
        "token_failures": token.failures if token else 0,
        "token_first_failure_at": token.first_failure_at if token else None,
        "token_locked_until": token.locked_until if token else None,
        "passphrase_hash": m.passphrase_hash, "username": m.username,
        "username_key": m.username.casefold() if m.username else None,
        "password_hash": m.password_hash,
        "password_history": orjson.dumps(list(m.password_history)).decode(),
        "password_changed_at": m.password_changed_at,
        "reset_digest": reset.digest if reset else None, "reset_sealed": reset.sealed if reset else None,
        "reset_issued_at": reset.issued_at if reset else None,
        "reset_expires_at": reset.expires_at if reset else None,
        "activated_at": m.activated_at, "version": m.version + 1, "updated_at": now,
        **_signin_columns(m),
    }


def _signin_columns(m: Member) -> dict[str, Any]:
    lock, otp = m.lockout, m.otp
    return {
        "lockout_state": None if lock.clean else orjson.dumps({
            "failures": [t.isoformat() for t in lock.failures], "successive": lock.successive,
            "locked_at": lock.locked_at.isoformat() if lock.locked_at else None,
            "locked_until": lock.locked_until.isoformat() if lock.locked_until else None,
            "mechanism": lock.mechanism}).decode(),
        "locked_until": lock.locked_until,
        "otp_digest": otp.digest if otp else None, "otp_code_mac": otp.code_mac if otp else None,
        "otp_issued_at": otp.issued_at if otp else None,
        "otp_expires_at": otp.expires_at if otp else None,
        "otp_attempts": otp.attempts if otp else 0,
        "password_expired_at": m.password_expired_at,
        "address": None if m.address is None else orjson.dumps(m.address.to_dict()).decode(),
    }


def _stamp(text: str | None) -> datetime | None:
    return None if text is None else _utc(datetime.fromisoformat(text))


def _lockout(text: str | None) -> LockoutState:
    if not text:
        return LockoutState()
    data = orjson.loads(text)
    return LockoutState(failures=tuple(_utc(datetime.fromisoformat(t)) for t in data["failures"]),
                        successive=data["successive"], locked_at=_stamp(data["locked_at"]),
                        locked_until=_stamp(data["locked_until"]), mechanism=data["mechanism"])


def _otp(row: Any) -> OtpChallenge | None:
    if row.get("otp_digest") is None:
        return None
    return OtpChallenge(digest=row["otp_digest"], code_mac=row["otp_code_mac"],
                        issued_at=_utc(row["otp_issued_at"]), expires_at=_utc(row["otp_expires_at"]),
                        attempts=row["otp_attempts"])


def _address(text: str | None) -> Address | None:
    return Address.from_dict(orjson.loads(text)) if text else None


def _utc(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo is UTC else stamp.astimezone(UTC)


def _opt(stamp: datetime | None) -> datetime | None:
    return None if stamp is None else _utc(stamp)
