"""Enrollment decisions: which e-mail address a new member gets under the policy of the
mode, and whether an activation must be printed; required fields checked at activation.
"""

from __future__ import annotations

import hmac
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime

from membership.errors import EnrollmentRefused, PolicyViolation
from membership.policies import (
    AutomatedEmailPolicy,
    EnrollmentMode,
    MembershipPolicies,
    PointOfCareEmailPolicy,
    RequiredField,
)
from mpi.model import Demographics

__all__ = [
    "EmailDecision",
    "age_on",
    "check_field_formats",
    "choose_email",
    "fields_match",
    "mpi_email",
]


@dataclass(frozen=True, slots=True)
class EmailDecision:
    """The address to use ("" for none) and whether the activation must go on paper."""

    email: str
    printed_activation: bool
    source: str  # "supplied", "mpi" or "none"


def mpi_email(best: Demographics) -> str:
    """The first e-mail address of the MPI's best demographics ("" when it has none)."""
    return next((t.value for t in best.emails if t.value), "")


def choose_email(mode: EnrollmentMode, policies: MembershipPolicies, supplied: str,
                 best: Demographics) -> EmailDecision:
    """Apply the e-mail policy of ``mode``; raise ``EnrollmentRefused`` when it refuses."""
    from_mpi = mpi_email(best)
    if mode is EnrollmentMode.AUTOMATED:
        if policies.automated_email is AutomatedEmailPolicy.USE_SUPPLIED:
            if not supplied:
                raise EnrollmentRefused("the e-mail policy uses the supplied address, and the "
                                        "request supplies none")
            return EmailDecision(supplied, False, "supplied")
        if not from_mpi:
            raise EnrollmentRefused("the e-mail policy uses the MPI's address, and the MPI has "
                                    "none for this patient")
        return EmailDecision(from_mpi, False, "mpi")
    policy = policies.point_of_care_email
    if policy is PointOfCareEmailPolicy.ACCEPT_USER_SUPPLIED:
        return EmailDecision(supplied, not supplied, "supplied" if supplied else "none")
    if from_mpi:
        return EmailDecision(from_mpi, False, "mpi")
    if policy is PointOfCareEmailPolicy.USE_MPI_ELSE_PRINTED:
        return EmailDecision("", True, "none")
    return EmailDecision(supplied, not supplied, "supplied" if supplied else "none")


def _normalised(value: str) -> str:
    text = unicodedata.normalize("NFKC", value).casefold()
    return "".join(c for c in text if c.isalnum())


def _stored(best: Demographics, name: str) -> str:
    if name == "postal_code":
        return next((a.postal_code for a in best.addresses if a.postal_code), "")
    value = getattr(best, name, "")
    return value if isinstance(value, str) else ""


def check_field_formats(required: tuple[RequiredField, ...], entered: dict[str, str]) -> None:
    """Every required field present and well formed, or ``PolicyViolation`` naming each."""
    problems = []
    for wanted in required:
        value = entered.get(wanted.name, "")
        if not value.strip():
            problems.append(f"{wanted.display} is required")
        elif not wanted.well_formed(value.strip()):
            problems.append(f"{wanted.display} is not in the expected format")
    if problems:
        raise PolicyViolation("; ".join(problems), tuple(problems))


def fields_match(required: tuple[RequiredField, ...], entered: dict[str, str],
                 best: Demographics) -> str | None:
    """Why the entered values do not match the MPI (None when every one matches).

    Compared without case, spaces or punctuation (so 123-45-6789 equals 123456789), in
    constant time; a field the MPI does not know never matches.
    """
    for wanted in required:
        stored = _normalised(_stored(best, wanted.name))
        given = _normalised(entered.get(wanted.name, ""))
        if not stored or not hmac.compare_digest(stored.encode(), given.encode()):
            return f"{wanted.name} does not match the MPI"
    return None


def age_on(birth_date: str, now: datetime) -> int | None:
    """Whole years from an ISO birth date (None when it is missing or only a year/month)."""
    try:
        born = date.fromisoformat(birth_date[:10])
    except ValueError:
        return None
    today = now.date()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
