"""Durations as operators write them: ``30s``, ``5m``, ``72h``, ``7d``."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["parse_duration"]

_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhd])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``text`` as a duration: a whole number and a unit, s, m, h or d.

    Raises ``ValueError`` naming the expected form.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 72h or 7d")
    # At most nine digits: even 999999999d is within timedelta's range.
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
