"""The words of each notification (US English; locales and templates come with issue 10).

Texts carry no patient data beyond what the member already knows: no names, no birth dates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["render"]

_TEXTS: dict[str, tuple[str, str]] = {
    "activation_token": (
        "Activate your patient portal account",
        "You have been enrolled in the patient portal.\n\n"
        "Your activation code: {token}\n"
        "{passphrase_line}"
        "It is valid until {expires_at}. Open the portal, choose Activate, enter the code, "
        "and choose a username and password.\n"),
    "registration_complete": (
        "Registration complete",
        "Your patient portal account is active. Your username is {username}.\n"),
    "deactivated": (
        "Your patient portal account was deactivated",
        "Your patient portal account was deactivated. Reason: {reason}\n"
        "Contact us if you did not expect this.\n"),
    "reactivated": (
        "Your patient portal account was reactivated",
        "Your patient portal account is active again. Reason: {reason}\n"),
    "password_reset": (
        "Reset your patient portal password",
        "A password reset was requested for your account.\n\n"
        "Your reset code: {token}\nIt is valid until {expires_at}.\n"),
    "password_changed": (
        "Your patient portal password was changed",
        "The password of your patient portal account was changed. "
        "Contact us if you did not do this.\n"),
}


def render(kind: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """(subject, body) of a notification; unknown kinds get a plain generic text."""
    subject, body = _TEXTS.get(kind, ("Patient portal notice", "A notice about your account.\n"))
    values: dict[str, Any] = {"token": "", "expires_at": "", "username": "", "reason": "",
                              **{k: v for k, v in context.items() if v is not None}}
    values["passphrase_line"] = (f"Your temporary passphrase: {values['passphrase']}\n"
                                 if values.get("passphrase") else "")
    return subject, body.format(**values) + f"\nReference: {context.get('member_id', '')}\n"
