"""routing.yaml's ``membership:`` section (and the ``enroll:`` rules of routes), validated
like the rest of the file and converted into ``membership.policies`` values.

Durations are written ``30s``, ``5m``, ``72h`` or ``7d``. Every key has the specification's
default where it names one; the shipped routing.yaml lists them all, commented.
"""

from __future__ import annotations

import importlib
import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from engine.domain.durations import parse_duration
from membership.lockout import Lockout, LockoutMechanism, lockout_for
from membership.model import Communication
from membership.policies import (
    PROFILE_FIELDS,
    AutomatedEmailPolicy,
    CharacterRules,
    HasherName,
    LockoutMessages,
    LockoutPolicy,
    LockRule,
    MembershipPolicies,
    PassphrasePolicy,
    PassphraseUse,
    PasswordPolicy,
    PointOfCareEmailPolicy,
    ProfilePolicy,
    RequiredField,
    SessionPolicy,
    ThrottlePolicy,
    TwoFactorPolicy,
)
from mpi.model import DEMOGRAPHIC_FIELDS

__all__ = ["EnrollRule", "MembershipRules", "load_mechanism"]

def _duration(value: Any) -> Any:
    """``"72h"`` -> ``timedelta(hours=72)``; a timedelta (or None) passes through."""
    if isinstance(value, timedelta) or value is None:
        return value
    return parse_duration(str(value))


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Count = Annotated[int, Field(ge=0, le=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CharacterRulesModel(_Strict):
    min_length: Annotated[int, Field(ge=1, le=128)] = 6
    min_upper: Count = 0
    min_lower: Count = 0
    min_digits: Count = 0
    min_other: Count = 0

    def value(self) -> CharacterRules:
        return CharacterRules(**self.model_dump())


class PassphraseModel(_Strict):
    use: PassphraseUse = PassphraseUse.PERMITTED
    send_with_token: bool = False
    generate: bool = False
    generated_words: Annotated[int, Field(ge=2, le=12)] = 4
    characters: CharacterRulesModel = CharacterRulesModel()
    extra_words: tuple[str, ...] = ()
    extra_common: tuple[str, ...] = ()

    def value(self) -> PassphrasePolicy:
        return PassphrasePolicy(use=self.use, send_with_token=self.send_with_token,
                                generate=self.generate, generated_words=self.generated_words,
                                characters=self.characters.value(), extra_words=self.extra_words,
                                extra_common=self.extra_common)


class PasswordModel(_Strict):
    characters: CharacterRulesModel = CharacterRulesModel(min_upper=1, min_lower=1, min_digits=1)
    dictionary_check: bool = True
    extra_common: tuple[str, ...] = ()
    history: Annotated[int, Field(ge=0, le=24)] = 5
    hasher: HasherName = HasherName.PBKDF2_SHA256
    iterations: Annotated[int, Field(ge=1000)] = 65_536
    salt_bytes: Annotated[int, Field(ge=16, le=256)] = 64
    argon2_time_cost: Annotated[int, Field(ge=1)] = 3
    argon2_memory_kib: Annotated[int, Field(ge=8192)] = 65_536
    argon2_parallelism: Annotated[int, Field(ge=1, le=16)] = 1
    expire_after: Duration | None = None
    deactivate_expired: bool = False
    notify_on_change: bool = True

    def value(self) -> PasswordPolicy:
        data = self.model_dump(exclude={"characters"})
        return PasswordPolicy(characters=self.characters.value(), **data)


class RequiredFieldModel(_Strict):
    name: str
    display: str = ""
    pattern: str = ""

    @field_validator("name")
    @classmethod
    def _known_field(cls, name: str) -> str:
        allowed = {*DEMOGRAPHIC_FIELDS, "postal_code"}
        if name not in allowed:
            raise ValueError(f"unknown MPI field {name!r} (expected one of {', '.join(sorted(allowed))})")
        return name

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return pattern

    def value(self) -> RequiredField:
        return RequiredField(name=self.name, display=self.display or self.name.replace("_", " "),
                             pattern=self.pattern)


class ThrottleModel(_Strict):
    failures: Annotated[int, Field(ge=1)] = 3
    window: Duration = timedelta(minutes=5)
    lock: Duration = timedelta(minutes=5)


class LockRuleModel(_Strict):
    """One built-in lockout mechanism; ``lock: indefinite`` locks until a password reset."""

    failures: Annotated[int, Field(ge=1, le=1000)] = 3
    window: Duration = timedelta(minutes=5)  # time-based only
    lock: Duration | Literal["indefinite"] = timedelta(minutes=5)

    def value(self, time_based: bool) -> LockRule:
        return LockRule(failures=self.failures, window=self.window if time_based else None,
                        lock=None if self.lock == "indefinite" else self.lock)


_BUILT_IN = LockoutMessages()
Message = Annotated[str, Field(min_length=1, max_length=500)]


class LockoutMessagesModel(_Strict):
    """What members are told; ``{until}`` in ``timed`` is the lock's end (ISO 8601, UTC)."""

    timed: Message = _BUILT_IN.timed
    indefinite: Message = _BUILT_IN.indefinite
    failed: Message = _BUILT_IN.failed


def load_mechanism(path: str, options: dict[str, str]) -> LockoutMechanism:
    """The custom lockout mechanism ``package.module:Class`` (or ``package.module.Class``),
    constructed with ``options``; ``ValueError`` says what is wrong with it."""
    module_name, _, class_name = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"cannot import {path!r}: {exc}") from None
    if not (isinstance(found, type) and issubclass(found, LockoutMechanism)):
        raise ValueError(f"{path!r} is not a subclass of membership.lockout.LockoutMechanism")
    try:
        return found(**options)
    except TypeError as exc:
        raise ValueError(f"{path!r} does not take these custom_options: {exc}") from None


class LockoutModel(_Strict):
    """``membership.lockout`` (5.2): ``time_based`` and ``successive`` (each ``null`` = off)."""

    time_based: LockRuleModel | None = LockRuleModel()
    successive: LockRuleModel | None = None
    custom: Annotated[str, Field(max_length=300)] = ""
    custom_options: dict[str, str] = {}
    messages: LockoutMessagesModel = LockoutMessagesModel()

    @field_validator("custom")
    @classmethod
    def _importable(cls, path: str) -> str:
        if path and not re.fullmatch(r"[A-Za-z_][\w.]*[:.][A-Za-z_]\w*", path):
            raise ValueError(f"{path!r} is not a dotted path like package.module:Class")
        return path

    @model_validator(mode="after")
    def _loads(self) -> LockoutModel:
        if self.custom:  # a mechanism that cannot be built fails `config check`, not a sign-in
            load_mechanism(self.custom, self.custom_options)
        return self

    def mechanisms(self) -> Lockout:
        """The built-in mechanisms in force plus the custom one, constructed."""
        custom = load_mechanism(self.custom, self.custom_options) if self.custom else None
        return lockout_for(self.value(), custom)

    def value(self) -> LockoutPolicy:
        return LockoutPolicy(
            time_based=self.time_based.value(True) if self.time_based else None,
            successive=self.successive.value(False) if self.successive else None,
            custom=self.custom, custom_options=tuple(sorted(self.custom_options.items())),
            messages=LockoutMessages(**self.messages.model_dump()))


class TwoFactorModel(_Strict):
    enabled: bool = False
    valid_for: Duration = timedelta(minutes=6)
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3


class SessionModel(_Strict):
    idle: Duration = timedelta(minutes=30)
    absolute: Duration = timedelta(hours=12)


ProfileField = Literal["address", "email", "mobile", "carrier", "communication", "locale"]
assert set(ProfileField.__args__) == set(PROFILE_FIELDS)  # type: ignore[attr-defined]


_DEFAULT_FIELDS = (RequiredFieldModel(name="ssn", display="Social Security number",
                                      pattern=r"\d{3}-?\d{2}-?\d{4}"),
                   RequiredFieldModel(name="mothers_maiden_name", display="Mother's maiden name"))
Preference = Literal["email", "mobile", "carrier", "communication", "locale"]


class MembershipRules(_Strict):
    """The ``membership:`` section."""

    pending_user_expiration: Duration = timedelta(hours=72)
    max_expiration_reset_window: Duration = timedelta(hours=72)
    password_reset_expiration: Duration = timedelta(hours=24)
    point_of_care_email: PointOfCareEmailPolicy = PointOfCareEmailPolicy.USE_MPI_ELSE_PRINTED
    automated_email: AutomatedEmailPolicy = AutomatedEmailPolicy.USE_MPI
    default_enrolling_user: Annotated[str, Field(min_length=1, max_length=128)] = \
        "portalbridge-automated-enrollment"
    passphrase: PassphraseModel = PassphraseModel()
    required_fields: Annotated[tuple[RequiredFieldModel, ...], Field(max_length=2)] = _DEFAULT_FIELDS
    password: PasswordModel = PasswordModel()
    activation_throttle: ThrottleModel = ThrottleModel()
    minimum_age: Annotated[int, Field(ge=0, le=25)] | None = None
    activation_preferences: tuple[Preference, ...] = ("email", "mobile", "carrier", "communication",
                                                      "locale")
    default_locale: Annotated[str, Field(min_length=2, max_length=16)] = "en-US"
    lockout: LockoutModel = LockoutModel()
    two_factor: TwoFactorModel = TwoFactorModel()
    sessions: SessionModel = SessionModel()
    profile_updates: tuple[ProfileField, ...] = PROFILE_FIELDS  # type: ignore[assignment]

    def policies(self) -> MembershipPolicies:
        """The frozen domain values (cached: built once per rules object)."""
        cached: MembershipPolicies | None = self.__dict__.get("_policies")
        if cached is None:
            t = self.activation_throttle
            cached = MembershipPolicies(
                pending_user_expiration=self.pending_user_expiration,
                max_expiration_reset_window=self.max_expiration_reset_window,
                password_reset_expiration=self.password_reset_expiration,
                point_of_care_email=self.point_of_care_email, automated_email=self.automated_email,
                default_enrolling_user=self.default_enrolling_user,
                passphrase=self.passphrase.value(),
                required_fields=tuple(f.value() for f in self.required_fields),
                password=self.password.value(),
                activation_throttle=ThrottlePolicy(failures=t.failures, window=t.window, lock=t.lock),
                minimum_age=self.minimum_age,
                activation_preferences=frozenset(self.activation_preferences),
                default_locale=self.default_locale, lockout=self.lockout.value(),
                two_factor=TwoFactorPolicy(**self.two_factor.model_dump()),
                sessions=SessionPolicy(**self.sessions.model_dump()),
                profile=ProfilePolicy(editable=frozenset(self.profile_updates)))
            object.__setattr__(self, "_policies", cached)
        return cached


Condition = Literal["email", "mobile", "address", "ssn", "birth_date"]


class EnrollRule(_Strict):
    """``enroll:`` on a route (or under ``fhir:``): after the patient is stored, write an
    automated-enrollment request when every condition holds and the patient is no member."""

    requires: tuple[Condition, ...] = ("email",)  # the best demographics must have these
    communication: Communication = Communication.EMAIL
    enrolling_user: Annotated[str, Field(max_length=128)] = ""  # "" = membership.default_enrolling_user
    locale: Annotated[str, Field(max_length=16)] = ""
    facilities: tuple[str, ...] = ("*",)  # FHIR: which facilities' creates enroll
