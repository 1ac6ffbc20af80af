"""Where members live: the storage port, and an in-memory double of it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from membership.model import Member

__all__ = ["InMemoryMemberRepository", "MemberRepository"]


class MemberRepository(ABC):
    """Members by id, patient, token digest or username. Changes are made on the returned
    objects and announced with ``changed`` so a store can write them."""

    @abstractmethod
    def get(self, member_id: str) -> Member | None:
        """The member with this id."""

    @abstractmethod
    def by_patient(self, patient_id: str) -> Member | None:
        """The member who is this MPI patient."""

    @abstractmethod
    def by_token(self, digest: str) -> Member | None:
        """The member whose current activation token has this digest."""

    @abstractmethod
    def by_reset_token(self, digest: str) -> Member | None:
        """The member whose password reset token has this digest."""

    @abstractmethod
    def by_otp(self, digest: str) -> Member | None:
        """The member whose current two-factor challenge has this digest."""

    @abstractmethod
    def by_username(self, username: str) -> Member | None:
        """The member with this username (compared case-insensitively)."""

    @abstractmethod
    def add(self, member: Member) -> None:
        """Store a new member."""

    @abstractmethod
    def changed(self, member: Member) -> None:
        """The member was changed in place."""

    def prefetch_patients(self, patient_ids: Iterable[str]) -> None:  # noqa: B027 - optional hint
        """Hint: the members of these patients will be asked for."""

    def prefetch_tokens(self, digests: Iterable[str], usernames: Iterable[str]) -> None:  # noqa: B027
        """Hint: members will be asked for by these token digests and usernames."""

    def prefetch_patients_with_index(self) -> None:  # noqa: B027 - optional hint
        """Hint: the members of the patients the index's next prefetch loads will be asked
        for; a store may read them in the same round trip."""

    def patient_created(self, patient_id: str) -> None:  # noqa: B027 - optional hint
        """Hint: this patient was created by the current unit of work, so no stored member
        can be it (only one added here since); asking for its member needs no read."""


class InMemoryMemberRepository(MemberRepository):
    """A complete repository in a dictionary."""

    def __init__(self) -> None:
        self.members: dict[str, Member] = {}

    def get(self, member_id: str) -> Member | None:
        return self.members.get(member_id)

    def by_patient(self, patient_id: str) -> Member | None:
        return next((m for m in self.members.values() if m.patient_id == patient_id), None)

    def by_token(self, digest: str) -> Member | None:
        return next((m for m in self.members.values() if m.token and m.token.digest == digest), None)

    def by_reset_token(self, digest: str) -> Member | None:
        return next((m for m in self.members.values() if m.reset and m.reset.digest == digest), None)

    def by_otp(self, digest: str) -> Member | None:
        return next((m for m in self.members.values() if m.otp and m.otp.digest == digest), None)

    def by_username(self, username: str) -> Member | None:
        wanted = username.casefold()
        return next((m for m in self.members.values()
                     if m.username and m.username.casefold() == wanted), None)

    def add(self, member: Member) -> None:
        self.members[member.id] = member

    def changed(self, member: Member) -> None:
        self.members[member.id] = member
