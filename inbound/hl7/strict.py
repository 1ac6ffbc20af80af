"""Strict structure validation with hl7apy, for routes that ask for it (``strict: true``).

hl7apy is far too slow for every message (tens per second), so it is the reference and the
strict gate, not the reader. Its exceptions are translated here, where it is called; some of
its messages quote the offending value (a name that is too long, say), so only messages
about the structure, which name elements and never values, are passed on.
"""

from __future__ import annotations

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import (
    ChildNotFound,
    ChildNotValid,
    HL7apyException,
    MaxChildLimitReached,
    OperationNotAllowed,
    ValidationError,
)
from hl7apy.parser import parse_message

from engine.errors import InvalidMessage

__all__ = ["validate_structure"]

#: hl7apy errors whose text names segments and groups only.
_STRUCTURAL = (ValidationError, ChildNotFound, ChildNotValid, MaxChildLimitReached, OperationNotAllowed)


def validate_structure(text: str) -> None:
    """Raise ``InvalidMessage`` unless ``text`` is a valid message of its declared structure."""
    try:
        message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        message.validate()
    except _STRUCTURAL as exc:
        raise InvalidMessage(f"structure validation failed: {str(exc)[:200]}", "MSH-9.3",
                             code="100") from exc
    except HL7apyException as exc:
        raise InvalidMessage(f"structure validation failed: a value does not fit its HL7 data "
                             f"type ({type(exc).__name__})", "MSH", code="102") from exc
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        # hl7apy raises plain Python errors on some malformed input.
        raise InvalidMessage(f"structure validation failed ({type(exc).__name__})", "MSH",
                             code="100") from exc
