"""Errors of the patient index. The engine maps them onto its own tree at the handler edge."""

from __future__ import annotations

__all__ = [
    "AmbiguousMatch",
    "IdentifierInUse",
    "InvalidIndexOperation",
    "MpiError",
    "RecordExists",
    "SeveralRecords",
    "UnknownRecord",
    "VersionConflict",
]


class MpiError(Exception):
    """Root of the index's errors; nothing has been changed when one is raised."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownRecord(MpiError):
    """The operation names a source record the index does not hold."""


class IdentifierInUse(MpiError):
    """The target identifier already belongs to another active record of that facility."""


class InvalidIndexOperation(MpiError):
    """The operation contradicts itself, for example merging a record into itself."""


class RecordExists(MpiError):
    """A create names a key that another record of the facility already holds."""

    def __init__(self, reason: str, record_id: str) -> None:
        super().__init__(reason)
        self.record_id = record_id


class VersionConflict(MpiError):
    """The caller's expected version is not the record's current one."""


class AmbiguousMatch(MpiError):
    """A conditional operation matched more than one record."""


class SeveralRecords(MpiError):
    """A message's identifiers name two different records of one facility: which one it is
    about cannot be told, and applying it to either would be a guess."""
