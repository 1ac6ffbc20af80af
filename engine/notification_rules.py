"""routing.yaml's ``notifications:`` section: locales, templates, carriers, retries, letters.

Validated like the rest of the file (unknown key = error). Templates themselves are checked
by ``portalbridge config check`` (``outbound.notify.check``), which renders every kind in
every configured locale with its sample context.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from engine.carriers import SHIPPED_CARRIERS, Carrier
from engine.channels import validate_channels
from engine.domain.durations import parse_duration

__all__ = ["CarrierRule", "Duration", "LetterRules", "NotificationRules", "RetryRules"]

_LOCALE = r"^[a-z]{2,3}(-[A-Z]{2})?$"
_CARRIER_KEY = re.compile(r"^[a-z0-9_]{1,32}$")
_DOMAIN = r"^([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$"


def _duration(value: Any) -> Any:
    """``30s``, ``5m``, ``72h``, ``7d`` as a ``timedelta``; anything else for pydantic."""
    return parse_duration(value) if isinstance(value, str) else value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True,
                              populate_by_name=True)


class CarrierRule(_Strict):
    """A carrier added to, or changed in, the shipped table (``engine.carriers``).

    For a shipped key, only the keys given change; a new ``gateway`` without ``retired_on``
    is taken to deliver (the retirement date belonged to the old gateway).
    """

    name: str | None = None
    gateway: Annotated[str | None, Field(pattern=_DOMAIN)] = None
    retired_on: date | None = None

    def applied_to(self, key: str, shipped: Carrier | None) -> Carrier:
        given = self.model_fields_set
        retired = self.retired_on if "retired_on" in given or "gateway" in given or shipped is None \
            else shipped.retired_on
        return Carrier(
            key=key,
            name=self.name or (shipped.name if shipped else key),
            gateway=self.gateway if "gateway" in given or shipped is None else shipped.gateway,
            retired_on=retired)


class RetryRules(_Strict):
    """Back-off between delivery attempts: ``first``, doubling up to ``max``."""

    first: Duration = timedelta(seconds=30)
    max: Duration = timedelta(hours=1)

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt (1 = the first failure)."""
        return min(self.first * (1 << max(attempts - 1, 0)), self.max)


class LetterRules(_Strict):
    """The printed activation letter."""

    return_address: tuple[str, ...] = ()  # lines printed above the member's address
    paper: Annotated[str, Field(pattern=r"^(letter|a4)$")] = "letter"


class NotificationRules(_Strict):
    """Delivery of e-mail and text messages, and the printed letter."""

    default_locale: Annotated[str, Field(pattern=_LOCALE)] = "en-US"
    locales: Annotated[tuple[Annotated[str, Field(pattern=_LOCALE)], ...], Field(min_length=1)] = (
        "en-US", "es-US")
    templates_folder: Path | None = None  # analysts' templates, looked up before the shipped ones
    from_address: Annotated[str, Field(alias="from", min_length=3)] = \
        "Patient Portal <no-reply@portal.example.org>"
    site_name: str = "Patient Portal"
    portal_url: str = "http://127.0.0.1:8080/portal"
    activation_url: str = "http://127.0.0.1:8080/portal/activate"  # ?token=... is appended
    password_reset_url: str = "http://127.0.0.1:8080/portal/password-reset"  # noqa: S105 - a URL
    #: How to get help, worded per locale (a plain string serves every locale).
    help_contact: str | Mapping[str, str] = Field(default_factory=lambda: {
        "en-US": "the registration desk of your clinic",
        "es-US": "la recepción de su clínica"})
    time_zone: str = "UTC"
    max_attempts: Annotated[int, Field(ge=1)] = 8
    retry: RetryRules = RetryRules()
    sms_max_parts: Annotated[int, Field(ge=1, le=10)] = 3
    carriers: Mapping[str, CarrierRule] = {}
    letter: LetterRules = LetterRules()

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone '{value}' (an IANA name such as America/New_York)") from None
        return value

    @field_validator("from_address")
    @classmethod
    def _plain_from(cls, value: str) -> str:
        if "@" not in value or any(ch in value for ch in "\r\n"):
            raise ValueError("must be an address such as 'Portal <no-reply@portal.example.org>'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NotificationRules:
        problems: list[str] = []
        if self.default_locale not in self.locales:
            problems.append(f"notifications.default_locale: '{self.default_locale}' is not one "
                            f"of notifications.locales")
        for key, rule in self.carriers.items():
            if not _CARRIER_KEY.match(key):
                problems.append(f"notifications.carriers.{key}: keys are lower-case letters, "
                                "digits and '_'")
            elif key not in SHIPPED_CARRIERS and not (rule.name and "gateway" in rule.model_fields_set):
                problems.append(f"notifications.carriers.{key}: a new carrier needs 'name' and "
                                "'gateway'")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def carrier_table(self) -> Mapping[str, Carrier]:
        """The shipped carriers with this file's additions and changes."""
        table: dict[str, Carrier] | None = self.__dict__.get("_carrier_cache")
        if table is None:
            table = dict(SHIPPED_CARRIERS)
            for key, rule in self.carriers.items():
                table[key] = rule.applied_to(key, SHIPPED_CARRIERS.get(key))
            object.__setattr__(self, "_carrier_cache", table)  # frozen model: cache only
        return MappingProxyType(table)

    def help_for(self, locale: str) -> str:
        """``help_contact`` in ``locale`` (else the default locale's, else any)."""
        if isinstance(self.help_contact, str):
            return self.help_contact
        return self.help_contact.get(locale) or self.help_contact.get(self.default_locale) \
            or next(iter(self.help_contact.values()), "")

    def locale_for(self, locale: str | None) -> str:
        """The member's locale when it is configured, else the site default."""
        return locale if locale in self.locales else self.default_locale

    def validate_channels(self, communication: str, email: str | None, mobile: str | None,
                          carrier: str | None, *, today: date) -> list[str]:
        """``engine.channels.validate_channels`` against this file's carrier table."""
        return validate_channels(communication, email, mobile, carrier,
                                 carriers=self.carrier_table, today=today)

    def resolved_against(self, folder: Path) -> NotificationRules:
        """The same rules with a relative ``templates_folder`` made relative to ``folder``."""
        if self.templates_folder is None or self.templates_folder.is_absolute():
            return self
        return self.model_copy(update={"templates_folder": folder / self.templates_folder})
