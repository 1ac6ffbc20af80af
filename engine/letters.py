"""The printed-letter port: activation letters for members who cannot be reached by e-mail.

A letter is owed to a pending member whose token is still valid when the e-mail policy
required printed activation (``printed_activation``), or when every activation-token
notification sent for the current token died or bounced, and no letter was printed for that
token yet (printing is audited as ``letter.print``, which is how "yet" is known). The
Workbench prints one member's letter (``GET /workbench/members/{id}/activation-letter``);
``portalbridge letters --pending`` prints every owed one into one PDF for a mail room. The
implementation (MPI demographics, the sealed token opened, fpdf2) lives at the edge,
``outbound.notify.desk``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LETTER_PRINTED", "ActivationLetters", "LetterProblem", "PrintedLetters"]

#: The audit action written for each member whose letter was printed.
LETTER_PRINTED = "letter.print"


@dataclass(frozen=True, slots=True)
class LetterProblem:
    """Why one member's letter cannot be printed (no postal address, token expired, ...)."""

    member_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PrintedLetters:
    """One PDF, one page per letter; the members (and their patients) it was printed for."""

    pdf: bytes
    printed: tuple[tuple[str, str], ...]  # (member id, patient id), in page order
    problems: tuple[LetterProblem, ...] = ()


class ActivationLetters(ABC):
    """Prints activation letters; never records anything (callers audit what they print)."""

    @abstractmethod
    def letter(self, member_id: str) -> PrintedLetters:
        """The letter of one member; ``NotFound`` for an unknown member, ``Conflict`` when no
        letter can be printed (not pending, token expired, no postal address: the reason)."""

    @abstractmethod
    def owed(self) -> list[str]:
        """The ids of members owed a letter now (see the module text), oldest first."""

    @abstractmethod
    def letters(self, member_ids: Sequence[str]) -> PrintedLetters:
        """The letters of these members in one PDF; the ones that cannot be printed are left
        out and named in ``problems``. ``Conflict`` when none can be printed."""
