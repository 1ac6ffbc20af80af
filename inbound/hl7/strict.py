"""Strict structure validation with hl7apy, for routes that ask for it (``strict: true``).

hl7apy is far too slow for every message (tens per second), so it is the reference and the
strict gate, not the reader. Its exceptions are translated here, where it is called.
"""

from __future__ import annotations

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message

from engine.errors import InvalidMessage

__all__ = ["validate_structure"]


def validate_structure(text: str) -> None:
    """Raise ``InvalidMessage`` unless ``text`` is a valid message of its declared structure."""
    try:
        message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        message.validate()
    except HL7apyException as exc:
        raise InvalidMessage(f"structure validation failed: {exc}", "MSH-9.3", code="100") from exc
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        # hl7apy raises plain Python errors on some malformed input.
        raise InvalidMessage(f"structure validation failed ({type(exc).__name__})", "MSH",
                             code="100") from exc
