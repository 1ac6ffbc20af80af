"""Which channels reach a member, and whether an enrollment's contact details can serve them.

Membership calls ``validate_channels`` when a member is enrolled or their preferences are
edited: a member who chose Text with no mobile number, or with a carrier we cannot reach,
is refused there with a clear reason rather than enrolled and never told their token.
Problems name the field and never repeat the value (it is patient data).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Literal, get_args

from engine.carriers import Carrier
from engine.notifications import Channel

__all__ = [
    "COMMUNICATIONS",
    "Communication",
    "channels_for",
    "is_email_address",
    "normalise_mobile",
    "validate_channels",
]

Communication = Literal["email", "text", "email_and_text"]
#: The communication preferences of the specification: Email, Text, Email and Text.
COMMUNICATIONS: tuple[Communication, ...] = get_args(Communication)

_CHANNELS: Mapping[str, tuple[Channel, ...]] = {
    "email": ("email",), "text": ("sms",), "email_and_text": ("email", "sms")}

# Deliberately plain: one "@", no spaces or control characters (which would let a value
# inject mail headers), a dotted domain of letters, digits and hyphens.
_EMAIL = re.compile(r"^[^\s@<>()\[\],;:\"\\]{1,64}@(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$")
_PHONE_PUNCTUATION = re.compile(r"[\s().\-]")
# NANP: area code and exchange both start with 2-9.
_NANP = re.compile(r"^[2-9]\d{2}[2-9]\d{6}$")


def channels_for(communication: str) -> tuple[Channel, ...]:
    """The channels a communication preference asks for (empty for an unknown one)."""
    return _CHANNELS.get(communication, ())


def is_email_address(value: str) -> bool:
    """Whether ``value`` is an e-mail address we can put in a To header (ASCII: addresses
    that need SMTPUTF8 are not supported)."""
    return value.isascii() and bool(_EMAIL.match(value))


def normalise_mobile(value: str) -> str | None:
    """The 10 digits of a US mobile number (``+1``, spaces and punctuation dropped), or None."""
    digits = _PHONE_PUNCTUATION.sub("", value)
    if digits.startswith("+1"):
        digits = digits[2:]
    elif len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits if _NANP.match(digits) else None


def validate_channels(communication: str, email: str | None, mobile: str | None,
                      carrier: str | None, *, carriers: Mapping[str, Carrier],
                      today: date) -> list[str]:
    """Every reason the contact details cannot serve ``communication``; empty when they can.

    ``carriers`` is the configured carrier table (``NotificationRules.carrier_table``);
    ``today`` decides whether a carrier's gateway still delivers.
    """
    wanted = channels_for(communication)
    if not wanted:
        return [f"communication: must be one of {', '.join(COMMUNICATIONS)}"]
    problems = _email_problems(email, "email" in wanted, communication)
    problems += _mobile_problems(mobile, "sms" in wanted, communication)
    problems += _carrier_problems(carrier, "sms" in wanted, communication, carriers, today)
    return problems


def _email_problems(email: str | None, needed: bool, communication: str) -> list[str]:
    if not email:
        return [f"email: required when communication is '{communication}'"] if needed else []
    return [] if is_email_address(email) else ["email: not a valid e-mail address"]


def _mobile_problems(mobile: str | None, needed: bool, communication: str) -> list[str]:
    if not mobile:
        return [f"mobile: required when communication is '{communication}'"] if needed else []
    if normalise_mobile(mobile) is None:
        return ["mobile: not a 10-digit US mobile number"]
    return []


def _carrier_problems(key: str | None, needed: bool, communication: str,
                      carriers: Mapping[str, Carrier], today: date) -> list[str]:
    if not key:
        if not needed:
            return []
        return [f"carrier: required when communication is '{communication}' "
                f"(one of {', '.join(sorted(carriers))})"]
    carrier = carriers.get(key)
    if carrier is None:
        return [f"carrier: unknown carrier '{key}' (one of {', '.join(sorted(carriers))})"]
    problem = carrier.gateway_problem(today) if needed else None
    return [f"carrier: {problem}"] if problem else []
