"""The notification kinds, the context values each one takes, and a sample of each.

A notification row carries only the values that belong to it (``required`` and
``optional`` below: all strings, times in ISO 8601 with an offset). The renderer adds the
site's values from routing.yaml and a few derived ones, so every template can use:

- site: ``site_name``, ``portal_url``, ``activation_url``, ``help_contact`` (in the
  locale), ``locale``
- derived, when the value they come from is present: ``activation_link`` (from ``token``),
  ``reset_link`` (from ``reset_token``), ``expires`` and ``expires_short`` (from
  ``expires_at``), ``occurred`` (from ``occurred_at``), all localised in the site's zone
- optional values that are absent are empty strings, so ``{% if passphrase %}`` works.

The samples are what ``portalbridge config check`` renders every template with: a template
that needs a value the kind does not provide fails there, not on a member's notification.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["EMAIL_PARTS", "KINDS", "LETTER", "LETTER_PARTS", "SMS_PARTS", "Kind", "kind_named"]

#: Template files of one kind in one locale: ``<locale>/<kind>.<part>``.
EMAIL_PARTS = ("subject.txt", "txt", "html")
SMS_PARTS = ("sms.txt",)
LETTER_PARTS = ("letter.html",)

# Sample values only (they render templates in ``config check``), never real secrets.
_TOKEN = "K7QM-3XTP-9DRW-LZ4H-B2NC-6YVA"  # noqa: S105
_PASSPHRASE = "maple river lantern"  # noqa: S105
_WHEN = "2026-03-07T20:30:00+00:00"


@dataclass(frozen=True, slots=True)
class Kind:
    """A notification kind: its context values and a sample context that renders."""

    name: str
    summary: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    sample: Mapping[str, str]
    parts: tuple[str, ...] = EMAIL_PARTS + SMS_PARTS

    def missing(self, context: Mapping[str, str]) -> list[str]:
        """Required values ``context`` lacks."""
        return [name for name in self.required if not context.get(name)]


def _kind(name: str, summary: str, required: tuple[str, ...], optional: tuple[str, ...] = (),
          parts: tuple[str, ...] = EMAIL_PARTS + SMS_PARTS, /, **sample: str) -> Kind:
    return Kind(name, summary, required, optional, MappingProxyType(sample), parts)


_ALL = (
    _kind("activation_token", "the activation token (and passphrase when the policy sends it)",
          ("token", "expires_at"), ("passphrase",),
          token=_TOKEN, expires_at=_WHEN, passphrase=_PASSPHRASE),
    _kind("registration_complete", "activation done: the account is ready", ("username",),
          username="jdoe1961"),
    _kind("deactivated", "the account was deactivated", ("occurred_at",), occurred_at=_WHEN),
    _kind("reactivated", "the account was reactivated", ("occurred_at",), occurred_at=_WHEN),
    _kind("password_reset", "a link to choose a new password", ("reset_token", "expires_at"),
          reset_token="Zq8rT2mW5xYb3nKc7vLd9pHs", expires_at=_WHEN),  # noqa: S106
    _kind("password_changed", "the password was changed", ("occurred_at",), occurred_at=_WHEN),
    _kind("otp_code", "a two-factor sign-in code", ("code",), ("valid_minutes",),
          code="493817", valid_minutes="6"),
    _kind("enrollment_reminder", "a reminder to activate; the token is valid again",
          ("token", "expires_at"), (), token=_TOKEN, expires_at=_WHEN),
    _kind("profile_contact_changed", "sent to the old address when e-mail or mobile changes",
          ("changed", "occurred_at"), (), changed="email", occurred_at=_WHEN),
)

#: The printed activation letter: rendered to PDF, never sent as a ``Notification``.
LETTER = _kind("activation_letter", "printed activation instructions, mailed to the member",
               ("token", "expires_at", "name", "printed_on"), ("passphrase",), LETTER_PARTS,
               token=_TOKEN, expires_at=_WHEN, passphrase=_PASSPHRASE,
               name="María José Gómez-Núñez", printed_on="March 4, 2026")

#: Every kind, by name; the letter included (it has its own template parts).
KINDS: Mapping[str, Kind] = MappingProxyType({kind.name: kind for kind in (*_ALL, LETTER)})


def kind_named(name: str) -> Kind | None:
    """The kind called ``name``, or None."""
    return KINDS.get(name)
