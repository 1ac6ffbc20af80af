"""Time and fresh identifiers, injected so rules about expiry and order are testable."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from datetime import UTC, datetime

__all__ = ["Clock", "IdSource", "RandomIds", "SystemClock"]


class Clock(ABC):
    """Tells the time; always timezone-aware UTC."""

    @abstractmethod
    def now(self) -> datetime:
        """The current instant."""


class SystemClock(Clock):
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class IdSource(ABC):
    """Makes identifiers for new records, patients and events."""

    @abstractmethod
    def new_id(self) -> str:
        """A 32-character opaque identifier."""

    @abstractmethod
    def new_uuid(self) -> str:
        """A UUID string, used where consumers expect one (event ids)."""


class RandomIds(IdSource):
    """Random UUID4-based identifiers."""

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def new_uuid(self) -> str:
        return str(uuid.uuid4())
