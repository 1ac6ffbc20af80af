"""What the index's tables can hold: column lengths and the characters no database stores.

One source of truth: ``mpi.tables`` sizes its columns with these numbers and the adapters
check incoming values against the same numbers before anything reaches the database, so a
value that does not fit is refused by name (HL7 AR, FHIR 4xx) instead of failing a commit.
``tests/unit/test_limits.py`` keeps the tables, the migrations and these numbers equal.

Characters: PostgreSQL refuses U+0000 in any text, and no UTF-8 database can store a lone
surrogate (U+D800-U+DFFF, which JSON's ``\\ud800`` escapes can produce). SQLite would take
a NUL, but a value must mean the same on both databases, so both are refused everywhere.
"""

from __future__ import annotations

import re

__all__ = [
    "AUTHORITY_CHARS",
    "BIRTH_DATE_KEY_CHARS",
    "FACILITY_CHARS",
    "FAMILY_NAME_KEY_CHARS",
    "IDENTIFIER_TYPE_CHARS",
    "IDENTIFIER_VALUE_CHARS",
    "RECORD_ID_CHARS",
    "first_unstorable",
    "storable_encoding",
    "unstorable_reason",
    "value_problem",
]

#: Record and patient ids (FHIR ids are 1-64 characters; generated ones are 32).
RECORD_ID_CHARS = 64
#: A facility code of routing.yaml.
FACILITY_CHARS = 64
#: An assigning authority: routing.yaml's code, or the namespace, OID or URI as sent.
AUTHORITY_CHARS = 200
#: An identifier's value; an MRN is one.
IDENTIFIER_VALUE_CHARS = 200
#: An identifier's type code (HL7 table 0203: MR, SS, PI, ...).
IDENTIFIER_TYPE_CHARS = 16
#: Search keys derived from the demographics (cut to fit, never refused: the full values
#: are kept in the record's JSON).
FAMILY_NAME_KEY_CHARS = 200
BIRTH_DATE_KEY_CHARS = 10

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def first_unstorable(value: str) -> int | None:
    """The offset of the first character no database stores (NUL, lone surrogate), or None."""
    if "\x00" not in value and storable_encoding(value):
        return None  # the common case, answered by C loops without the regular expression
    found = _UNSTORABLE.search(value)
    return None if found is None else found.start()


def storable_encoding(value: str) -> bool:
    """Whether ``value`` is valid Unicode text (no lone surrogate): a UTF-8 encoder takes it."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable_reason(value: str) -> str | None:
    """Why ``value`` cannot be stored, in words that quote nothing of it; None if it can."""
    offset = first_unstorable(value)
    if offset is None:
        return None
    what = "a NUL character (U+0000)" if value[offset] == "\x00" else (
        f"a lone surrogate (U+{ord(value[offset]):04X}), which is not a character")
    return f"holds {what} at character {offset + 1}"


def value_problem(value: str, limit: int | None = None) -> str | None:
    """Why ``value`` cannot be stored in a column of ``limit`` characters; None if it can.

    The words never quote the value: they may end up in a log line.
    """
    if limit is not None and len(value) > limit:
        return f"is {len(value)} characters long; at most {limit} are accepted"
    return unstorable_reason(value)
