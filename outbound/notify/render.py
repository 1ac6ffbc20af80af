"""From a notification's values to the words a member reads: context, locale, templates.

The renderer picks the member's locale (or the site default), adds the site's values and the
derived ones (links, localised times) to the notification's context, and renders the
templates of the kind. A notification that cannot be rendered (unknown kind, a required
value missing, a template error) fails permanently: retrying would fail the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import DateTimePattern, parse_pattern
from jinja2 import TemplateError

from engine.notification_rules import NotificationRules
from engine.notifications import DeliveryFailed
from outbound.notify.kinds import Kind, kind_named
from outbound.notify.templates import TemplateSet, describe_template_error, template_name

__all__ = ["NotificationRenderer", "RenderedEmail"]

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """The three parts of an e-mail, in the member's locale."""

    subject: str
    text: str
    html: str
    locale: str


@dataclass(frozen=True, slots=True)
class _Wording:
    """A locale's date and time patterns, looked up and parsed once (Babel's ``format_*``
    functions look them up on every call, a fifth of a notification's rendering time)."""

    locale: Locale
    long_date: DateTimePattern
    month_day: DateTimePattern
    time: DateTimePattern
    zone: DateTimePattern
    joined: str  # "{1}, {0}": how the locale joins a date ({1}) and a time ({0})


@lru_cache(maxsize=64)
def _wording(locale: str) -> _Wording:
    where = Locale.parse(locale.replace("-", "_"))
    return _Wording(where, where.date_formats["long"], where.datetime_skeletons["MMMd"],
                    where.datetime_skeletons["hm"], parse_pattern("z"),
                    str(where.datetime_formats["long"]))


@lru_cache(maxsize=1024)
def _worded(local: datetime, zone: str, locale: str, short: bool) -> str:
    """``local`` (in the site's ``zone``, which keys the cache: equal instants in two zones
    are equal datetimes) worded for ``locale``, long or short."""
    words = _wording(locale)
    time = f"{words.time.apply(local, words.locale)} {words.zone.apply(local, words.locale)}"
    if short:
        return f"{words.month_day.apply(local, words.locale)}, {time}"
    return words.joined.format(time, words.long_date.apply(local, words.locale))


class NotificationRenderer:
    """Renders the templates of every kind for one site (its routing.yaml notifications)."""

    def __init__(self, rules: NotificationRules, templates: TemplateSet | None = None) -> None:
        self.rules = rules
        self._zone = ZoneInfo(rules.time_zone)
        self.templates = templates or TemplateSet(rules.templates_folder, filters={
            "localdatetime": self._filter_datetime})

    def email(self, kind_name: str, locale: str | None, values: Mapping[str, str]) -> RenderedEmail:
        """Subject, plain text and HTML of one e-mail."""
        kind, chosen, context = self.prepare(kind_name, locale, values)
        subject = _SPACES.sub(" ", self._render(chosen, kind, "subject.txt", context)).strip()
        return RenderedEmail(subject=subject, text=self._render(chosen, kind, "txt", context),
                             html=self._render(chosen, kind, "html", context), locale=chosen)

    def sms(self, kind_name: str, locale: str | None, values: Mapping[str, str]) -> str:
        """The text of a text message (before splitting into parts)."""
        kind, chosen, context = self.prepare(kind_name, locale, values)
        return self._render(chosen, kind, "sms.txt", context).strip()

    def part(self, kind_name: str, locale: str | None, part: str, values: Mapping[str, str]) -> str:
        """Any one part of a kind, such as the letter's ``letter.html``."""
        kind, chosen, context = self.prepare(kind_name, locale, values)
        return self._render(chosen, kind, part, context)

    def prepare(self, kind_name: str, locale: str | None,
                values: Mapping[str, str]) -> tuple[Kind, str, dict[str, Any]]:
        """The kind, the locale used and the full template context; ``DeliveryFailed`` if
        the kind is unknown or a required value is missing."""
        kind = kind_named(kind_name)
        if kind is None:
            raise DeliveryFailed(f"unknown notification kind '{kind_name}'", permanent=True)
        missing = kind.missing(values)
        if missing:
            raise DeliveryFailed(f"{kind.name}: the context lacks {', '.join(missing)}",
                                 permanent=True)
        chosen = self.rules.locale_for(locale)
        try:
            return kind, chosen, self.context(kind, chosen, values)
        except ValueError as exc:  # a time that is not ISO 8601
            raise DeliveryFailed(f"{kind.name}: {exc}", permanent=True) from exc

    def context(self, kind: Kind, locale: str, values: Mapping[str, str]) -> dict[str, Any]:
        """Site values, the kind's optional values as "", the given values, derived values."""
        rules = self.rules
        context: dict[str, Any] = {
            "site_name": rules.site_name, "portal_url": rules.portal_url,
            "activation_url": rules.activation_url,
            "help_contact": rules.help_for(locale), "locale": locale,
            **dict.fromkeys(kind.optional, ""), **values}
        if values.get("token"):
            context["activation_link"] = _link(rules.activation_url, values["token"])
        if values.get("reset_token"):
            context["reset_link"] = _link(rules.password_reset_url, values["reset_token"])
        if values.get("expires_at"):
            context["expires"] = self.format_datetime(values["expires_at"], locale)
            context["expires_short"] = self.format_datetime(values["expires_at"], locale, short=True)
        if values.get("occurred_at"):
            context["occurred"] = self.format_datetime(values["occurred_at"], locale)
        return context

    def format_datetime(self, value: str | datetime, locale: str, *, short: bool = False) -> str:
        """A moment in the site's zone, worded for ``locale`` ("March 7, 2026, 3:30 PM EST")."""
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is None:  # a time without an offset is taken as UTC, never as local
            moment = moment.replace(tzinfo=UTC)
        # The wording stops at the minute, so it is worded once per minute and locale: the
        # notifications of a bulk enrollment, all expiring within the same minutes, share it.
        minute = moment.astimezone(self._zone).replace(second=0, microsecond=0)
        return _worded(minute, self.rules.time_zone, locale, short)

    def _filter_datetime(self, value: str, locale: str = "", short: bool = False) -> str:
        return self.format_datetime(value, locale or self.rules.default_locale, short=short)

    def _render(self, locale: str, kind: Kind, part: str, context: Mapping[str, Any]) -> str:
        try:
            return self.templates.render(locale, kind.name, part, context)
        except TemplateError as exc:
            name = template_name(locale, kind.name, part)
            raise DeliveryFailed(f"{name}: {describe_template_error(exc)}", permanent=True) from exc
        except ValueError as exc:  # a filter given a time that is not ISO 8601
            raise DeliveryFailed(f"{template_name(locale, kind.name, part)}: {exc}",
                                 permanent=True) from exc


def _link(base: str, token: str) -> str:
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}token={quote(token, safe='')}"
