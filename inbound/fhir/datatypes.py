"""FHIR datatypes (Identifier, HumanName, Address, ContactPoint, Reference) read into the
index's value types, the same ones HL7 v2 PID fields become (see ``inbound.hl7.datatypes``).

Input is validated FHIR JSON (``inbound.fhir.parse``), so shapes are known; values are
stripped of surrounding blanks as the HL7 side does, so the same person sent both ways
compares equal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mpi.model import Address, Identifier, PersonName, Telecom

__all__ = ["AUTHORITY_SYSTEM", "SSN_SYSTEM", "V2_0203", "address", "identifier", "name",
           "reference_id", "telecom", "type_code", "unique"]

#: Code systems of HL7 table 0203 (identifier type): the current one and the pre-R4 URI.
V2_0203 = ("http://terminology.hl7.org/CodeSystem/v2-0203", "http://hl7.org/fhir/v2/0203")
#: The US Social Security number system: its identifiers are SSNs whatever their type says.
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
#: How portalbridge writes an authority that routing.yaml gives no URI or OID for.
AUTHORITY_SYSTEM = "urn:portalbridge:authority:"
_SSN_TYPES = frozenset({"SS", "SSN"})


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _texts(values: Any) -> tuple[str, ...]:
    """A primitive array without its null placeholders and blank entries."""
    return tuple(t for t in (_text(v) for v in values or ()) if t)


def type_code(data: dict[str, Any]) -> str:
    """The HL7 table 0203 code of an Identifier.type (MR, SS, ...), or ""."""
    concept = data.get("type") or {}
    for coding in concept.get("coding") or ():
        if coding.get("system") in V2_0203 and _text(coding.get("code")):
            return _text(coding.get("code")).upper()
    return ""


def identifier(data: dict[str, Any], default_authority: str,
               canonical_authority: Callable[..., str]) -> Identifier | None:
    """An Identifier: system -> assigning authority (routing.yaml's code), type -> MR/SS/...

    Without a value there is nothing to identify by (the f001 example has one such entry):
    it is skipped. Without a system the facility's own authority is assumed, as for HL7.
    """
    value = _text(data.get("value"))
    if not value:
        return None
    system = _text(data.get("system"))
    code = "SS" if system == SSN_SYSTEM else type_code(data)
    if system.startswith(AUTHORITY_SYSTEM):
        system = system[len(AUTHORITY_SYSTEM):]
    authority = canonical_authority(system) if system else ""
    if not authority and code not in _SSN_TYPES:
        authority = default_authority
    return Identifier(value, authority, code)


def name(data: dict[str, Any]) -> PersonName | None:
    """A HumanName; one with neither family nor given (``text`` alone) is not kept, since
    free text cannot be split into parts reliably."""
    family, given = _text(data.get("family")), _texts(data.get("given"))
    if not family and not given:
        return None
    return PersonName(family=family, given=given, prefix=" ".join(_texts(data.get("prefix"))),
                      suffix=" ".join(_texts(data.get("suffix"))), use=_text(data.get("use")))


def address(data: dict[str, Any]) -> Address | None:
    """An Address; one without lines, city, state, postal code or country is not kept."""
    result = Address(lines=_texts(data.get("line")), city=_text(data.get("city")),
                     state=_text(data.get("state")), postal_code=_text(data.get("postalCode")),
                     country=_text(data.get("country")), use=_text(data.get("use")))
    return None if result == Address(use=result.use) else result


def telecom(data: dict[str, Any]) -> Telecom | None:
    """A ContactPoint with a value; ``url`` contact points are not kept by the index."""
    value, system = _text(data.get("value")), _text(data.get("system"))
    if not value or not system or system == "url":
        return None
    return Telecom(system, value, _text(data.get("use")))


def reference_id(reference: Any, resource_type: str) -> str | None:
    """The logical id in ``Type/id`` or ``<base>/Type/id[/_history/n]``, else None."""
    if not isinstance(reference, str):
        return None
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[:parts.index("_history")]
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    return None


def unique(items: Iterable[Any]) -> tuple[Any, ...]:
    """Items without None and without repeats, in first-seen order."""
    return tuple(dict.fromkeys(i for i in items if i is not None))
