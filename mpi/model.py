"""The patient index's vocabulary: identifiers, demographics, source records and patients.

A *source record* is what one facility knows about one patient under one (assigning
authority, MRN). A *patient* groups the source records that share an identifier; its best
demographics are derived from them by tier ranking (see ``mpi.ranking``).

Value types are frozen and compare by value, so "did the best demographics change?" is a
plain ``!=``. Serialisation to and from JSON-able dicts lives here too, because the store,
the HTTP API and the events all need the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from functools import cached_property
from typing import Any

import orjson

__all__ = [
    "DEMOGRAPHIC_FIELDS",
    "Address",
    "Demographics",
    "DemographicsUpdate",
    "Identifier",
    "Patient",
    "PersonName",
    "RecordKey",
    "SourceRecord",
    "Telecom",
    "distinct_identifiers",
]


@dataclass(frozen=True, slots=True)
class Identifier:
    """An identifier as a facility issued it: value, issuing authority and type (MR, SS, ...)."""

    value: str
    authority: str = ""
    type_code: str = ""

    @property
    def links_patients(self) -> bool:
        """Only authority-qualified, non-SSN identifiers are strong enough to join records."""
        return bool(self.authority) and self.type_code not in {"SS", "SSN"}

    def to_dict(self) -> dict[str, str]:
        return {"value": self.value, "authority": self.authority, "type": self.type_code}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Identifier:
        return cls(data["value"], data.get("authority", ""), data.get("type", ""))


def distinct_identifiers(identifiers: Iterable[Identifier]) -> tuple[Identifier, ...]:
    """One identifier per (authority, value), in first-seen order.

    The same number sent once with a type (MR) and once without is one identifier, not
    two: the typed one is kept, since the type says more.
    """
    kept: dict[tuple[str, str], Identifier] = {}
    for identifier in identifiers:
        key = (identifier.authority, identifier.value)
        first = kept.get(key)
        if first is None or (not first.type_code and identifier.type_code):
            kept[key] = identifier
    return tuple(kept.values())


@dataclass(frozen=True, slots=True)
class RecordKey:
    """The natural key of a source record: one record per (authority, MRN) per facility."""

    facility: str
    authority: str
    mrn: str

    def __str__(self) -> str:
        return f"{self.facility}:{self.authority}|{self.mrn}"


@dataclass(frozen=True, slots=True)
class PersonName:
    """A person's name. ``use`` follows FHIR NameUse (official, usual, maiden, ...)."""

    family: str = ""
    given: tuple[str, ...] = ()
    prefix: str = ""
    suffix: str = ""
    use: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "given": list(self.given), "prefix": self.prefix,
                "suffix": self.suffix, "use": self.use}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersonName:
        return cls(data.get("family", ""), tuple(data.get("given", ())), data.get("prefix", ""),
                   data.get("suffix", ""), data.get("use", ""))


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address. ``use`` follows FHIR AddressUse (home, work, temp, old, billing)."""

    lines: tuple[str, ...] = ()
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""
    use: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"lines": list(self.lines), "city": self.city, "state": self.state,
                "postal_code": self.postal_code, "country": self.country, "use": self.use}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Address:
        return cls(tuple(data.get("lines", ())), data.get("city", ""), data.get("state", ""),
                   data.get("postal_code", ""), data.get("country", ""), data.get("use", ""))


@dataclass(frozen=True, slots=True)
class Telecom:
    """A phone number or e-mail address. ``system``/``use`` follow FHIR ContactPoint."""

    system: str
    value: str
    use: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"system": self.system, "value": self.value, "use": self.use}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Telecom:
        return cls(data["system"], data["value"], data.get("use", ""))


@dataclass(frozen=True, kw_only=True)
class Demographics:
    """Everything the index knows of a person from one source. Empty means "not known".

    Not slotted on purpose: its JSON form is cached on the instance, because one value is
    compared, stored and put in events several times per message.
    """

    identifiers: tuple[Identifier, ...] = ()
    names: tuple[PersonName, ...] = ()
    birth_date: str = ""  # ISO 8601, possibly partial: "1961", "1961-06", "1961-06-15"
    sex: str = ""  # FHIR AdministrativeGender: male, female, other, unknown
    addresses: tuple[Address, ...] = ()
    phones: tuple[Telecom, ...] = ()
    emails: tuple[Telecom, ...] = ()
    mothers_maiden_name: str = ""
    ssn: str = ""
    deceased: bool | None = None
    deceased_at: str = ""  # ISO 8601 date-time or date
    active: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form. Shared and cached: treat it as read-only."""
        return self._json_dict

    @cached_property
    def _json_dict(self) -> dict[str, Any]:
        return {name: _to_json(getattr(self, name)) for name in _FIELD_NAMES}

    @cached_property
    def json_text(self) -> str:
        """``to_dict()`` as compact JSON text, cached. A lone surrogate raises
        ``UnicodeEncodeError``, as any UTF-8 encoder would (orjson's own error is a bare
        ``TypeError``, which would look like a bug)."""
        try:
            return orjson.dumps(self._json_dict).decode()
        except TypeError:
            json.dumps(self._json_dict, ensure_ascii=False).encode("utf-8")
            raise

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Demographics:
        kwargs = {name: _from_json(name, data[name]) for name in _FIELD_NAMES if name in data}
        return cls(**kwargs)

    def is_empty(self, name: str) -> bool:
        value = getattr(self, name)
        return value is None or value in ("", ())


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Demographics))
#: The fields ranked for best demographics. Identifiers are not ranked: a patient has them all.
DEMOGRAPHIC_FIELDS: tuple[str, ...] = tuple(n for n in _FIELD_NAMES if n != "identifiers")

_ITEM_TYPES: dict[str, Any] = {
    "identifiers": Identifier, "names": PersonName, "addresses": Address,
    "phones": Telecom, "emails": Telecom,
}


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [item.to_dict() for item in value]
    return value


def _from_json(name: str, value: Any) -> Any:
    item_type = _ITEM_TYPES.get(name)
    if item_type is not None:
        return tuple(item_type.from_dict(item) for item in value)
    return value


@dataclass(frozen=True, slots=True)
class DemographicsUpdate:
    """What a sender said about a record: ``values`` for the fields in ``present``.

    HL7 v2 distinguishes a field that was not sent (keep what is stored) from the explicit
    null ``""`` (delete what is stored); FHIR update replaces the resource. Fields listed in
    ``present`` replace the stored value (an empty value clears it); others are kept.
    """

    values: Demographics
    present: frozenset[str]

    def apply_to(self, stored: Demographics) -> Demographics:
        if self.present.issuperset(_FIELD_NAMES):
            return self.values
        changes = {name: getattr(self.values, name) for name in self.present}
        return replace(stored, **changes)


@dataclass(slots=True, kw_only=True)
class SourceRecord:
    """One facility's record of one patient, keyed by (facility, authority, MRN)."""

    id: str
    key: RecordKey
    patient_id: str
    demographics: Demographics
    created_at: datetime
    updated_at: datetime
    merged_into: str | None = None  # the surviving record's id after a merge
    #: Increases with every change of the record's data (FHIR ``meta.versionId``).
    version: int = 1

    @property
    def is_active(self) -> bool:
        return self.merged_into is None


@dataclass(slots=True, kw_only=True)
class Patient:
    """A person in the index: the records that share an identifier, and what ranks best."""

    id: str
    created_at: datetime
    updated_at: datetime
    best: Demographics = field(default_factory=Demographics)
    #: For each ranked field, the facility whose record supplied the best value.
    provenance: dict[str, str] = field(default_factory=dict)
    #: The facility and tier of the highest-ranked record.
    winner_facility: str = ""
    winner_tier: int | None = None
    merged_into: str | None = None
