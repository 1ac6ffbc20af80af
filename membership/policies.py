"""The organisation's membership decisions as frozen values (``routing.yaml``'s
``membership:`` section is validated by the engine and converted into these).

Every default is the specification's default where it names one; where it leaves the value
to the organisation without one, the default is the conservative choice written beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

__all__ = [
    "PROFILE_FIELDS",
    "AutomatedEmailPolicy",
    "CharacterRules",
    "EnrollmentMode",
    "HasherName",
    "LockRule",
    "LockoutMessages",
    "LockoutPolicy",
    "MembershipPolicies",
    "PassphrasePolicy",
    "PassphraseUse",
    "PasswordPolicy",
    "PointOfCareEmailPolicy",
    "ProfilePolicy",
    "RequiredField",
    "SessionPolicy",
    "ThrottlePolicy",
    "TwoFactorPolicy",
]


class EnrollmentMode(StrEnum):
    """How an enrollment began (the e-mail policy depends on it)."""

    POINT_OF_CARE = "point_of_care"
    AUTOMATED = "automated"


class PointOfCareEmailPolicy(StrEnum):
    """E-mail handling when a Workbench user enrolls a patient in person."""

    ACCEPT_USER_SUPPLIED = "accept_user_supplied"
    USE_MPI_ELSE_PRINTED = "use_mpi_else_printed"
    USER_SUPPLIED_IF_NO_MPI = "user_supplied_if_no_mpi"


class AutomatedEmailPolicy(StrEnum):
    """E-mail handling when an external system enrolls a patient."""

    USE_SUPPLIED = "use_supplied"
    USE_MPI = "use_mpi"


class PassphraseUse(StrEnum):
    """Whether temporary passphrases are in use."""

    NOT_PERMITTED = "not_permitted"
    PERMITTED = "permitted"
    REQUIRED = "required"


class HasherName(StrEnum):
    """Slow salted hash used for passwords and passphrases."""

    PBKDF2_SHA256 = "pbkdf2_sha256"
    ARGON2ID = "argon2id"


@dataclass(frozen=True, slots=True, kw_only=True)
class CharacterRules:
    """Minimum length and character mix of a secret a person chooses."""

    min_length: int = 6
    min_upper: int = 0
    min_lower: int = 0
    min_digits: int = 0
    min_other: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PassphrasePolicy:
    """Temporary passphrases (specification: Passphrase Configuration)."""

    use: PassphraseUse = PassphraseUse.PERMITTED
    send_with_token: bool = False  # e-mail the passphrase with the activation token
    generate: bool = False  # generate one when none is given (only when sent with the token)
    generated_words: int = 4
    characters: CharacterRules = CharacterRules()
    extra_words: tuple[str, ...] = ()  # added to the shipped generator dictionary
    extra_common: tuple[str, ...] = ()  # added to the shipped common-choices dictionary


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordPolicy:
    """Member passwords (specification 5.1)."""

    characters: CharacterRules = CharacterRules(min_length=6, min_upper=1, min_lower=1,
                                                min_digits=1, min_other=0)
    dictionary_check: bool = True
    extra_common: tuple[str, ...] = ()
    history: int = 5  # old passwords kept and refused for reuse (no default in the documents)
    hasher: HasherName = HasherName.PBKDF2_SHA256
    iterations: int = 65_536
    salt_bytes: int = 64
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65_536
    argon2_parallelism: int = 1
    expire_after: timedelta | None = None  # passwords do not expire by default
    deactivate_expired: bool = False  # the scheduler marks expired passwords (2.2.1)
    notify_on_change: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class RequiredField:
    """A demographic field the person must give at activation, checked against the MPI."""

    name: str  # an MPI field name: ssn, mothers_maiden_name, birth_date, postal_code, ...
    display: str
    pattern: str = ""  # a regular expression the entered value must match in full

    def well_formed(self, value: str) -> bool:
        return not self.pattern or re.fullmatch(self.pattern, value) is not None


DEFAULT_REQUIRED_FIELDS = (
    RequiredField(name="ssn", display="Social Security number", pattern=r"\d{3}-?\d{2}-?\d{4}"),
    RequiredField(name="mothers_maiden_name", display="Mother's maiden name"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottlePolicy:
    """Failed activations of one token: ``failures`` within ``window`` lock it for ``lock``
    (the documents' sign-in lockout defaults, applied to activation attempts)."""

    failures: int = 3
    window: timedelta = timedelta(minutes=5)
    lock: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True, kw_only=True)
class LockRule:
    """One built-in lockout mechanism: ``failures`` failed sign-ins (within ``window`` for the
    time-based one; ``None`` = no time limit, the successive-failure one) lock the account for
    ``lock`` (``None`` = indefinitely, until a password reset)."""

    failures: int
    window: timedelta | None
    lock: timedelta | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LockoutMessages:
    """What a member with valid credentials is told while locked (5.2.1: built-in or custom)."""

    timed: str = ("Your account is locked after too many failed sign-ins. Try again after "
                  "{until}, or reset your password to unlock it now.")
    indefinite: str = ("Your account is locked after too many failed sign-ins. Reset your "
                       "password to unlock it.")
    failed: str = "the username or password is not correct"


@dataclass(frozen=True, slots=True, kw_only=True)
class LockoutPolicy:
    """Account lockout (specification 5.2). Default: 3 failures within 5 minutes lock the
    account for 5 minutes; the successive-failure mechanism is off. ``custom`` names a
    mechanism class by dotted path (``package.module:Class`` or ``package.module.Class``)."""

    time_based: LockRule | None = LockRule(failures=3, window=timedelta(minutes=5),
                                           lock=timedelta(minutes=5))
    successive: LockRule | None = None
    custom: str = ""
    custom_options: tuple[tuple[str, str], ...] = ()
    messages: LockoutMessages = LockoutMessages()


@dataclass(frozen=True, slots=True, kw_only=True)
class TwoFactorPolicy:
    """Two-factor sign-in (specification 5.3): a 6-digit code valid 6 minutes, single use."""

    enabled: bool = False
    valid_for: timedelta = timedelta(minutes=6)
    max_attempts: int = 3  # wrong codes before the challenge is spent (no default in 5.3)
    digits: int = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionPolicy:
    """Portal sessions: idle and absolute lifetimes (the documents name none)."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


PROFILE_FIELDS = ("address", "email", "mobile", "carrier", "communication", "locale")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfilePolicy:
    """Which profile details a member may change (specification 4.3.1); all by default."""

    editable: frozenset[str] = frozenset(PROFILE_FIELDS)


@dataclass(frozen=True, slots=True, kw_only=True)
class MembershipPolicies:
    """Every membership decision of the organisation."""

    pending_user_expiration: timedelta = timedelta(hours=72)
    max_expiration_reset_window: timedelta = timedelta(hours=72)
    password_reset_expiration: timedelta = timedelta(hours=24)
    point_of_care_email: PointOfCareEmailPolicy = PointOfCareEmailPolicy.USE_MPI_ELSE_PRINTED
    automated_email: AutomatedEmailPolicy = AutomatedEmailPolicy.USE_MPI
    default_enrolling_user: str = "portalbridge-automated-enrollment"
    passphrase: PassphrasePolicy = PassphrasePolicy()
    required_fields: tuple[RequiredField, ...] = DEFAULT_REQUIRED_FIELDS
    password: PasswordPolicy = PasswordPolicy()
    activation_throttle: ThrottlePolicy = ThrottlePolicy()
    minimum_age: int | None = None  # younger members become inactive/minor at activation
    activation_preferences: frozenset[str] = field(
        default_factory=lambda: frozenset({"email", "mobile", "carrier", "communication", "locale"}))
    default_locale: str = "en-US"
    lockout: LockoutPolicy = LockoutPolicy()
    two_factor: TwoFactorPolicy = TwoFactorPolicy()
    sessions: SessionPolicy = SessionPolicy()
    profile: ProfilePolicy = ProfilePolicy()
