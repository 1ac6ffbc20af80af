"""Source records written out as FHIR Patient resources (JSON valid in R4, R4B and R5).

A FHIR Patient here *is* one facility's source record: its id is the record id, its version
the record's version. Identifier systems are written back the way routing.yaml knows the
authority (its first URI alias, ``urn:oid:`` for an OID, an unknown system exactly as it was
sent, else ``urn:portalbridge:authority:<code>`` for an HL7 namespace), so a resource read and
written back lands on the same authority. A merged record is ``active: false`` with a
``replaced-by`` link; the survivor lists ``replaces`` links.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from engine.rules import RoutingRules
from inbound.fhir.datatypes import AUTHORITY_SYSTEM, SSN_SYSTEM, V2_0203
from inbound.fhir.translate import MOTHERS_MAIDEN_NAME
from mpi.model import Address, Demographics, Identifier, PersonName, SourceRecord, Telecom

__all__ = ["FACILITY_SYSTEM", "Renderer", "etag", "http_date", "instant"]

#: The identifier system of managingOrganization: a routing.yaml facility code.
FACILITY_SYSTEM = "urn:portalbridge:facility"
_OID = re.compile(r"^[0-2](\.(0|[1-9]\d*))+$")
#: A URI scheme (RFC 3986): a system written with one is given back exactly as it was sent,
#: even when it is not a well-formed URL (``http:/example.org/ids``).
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_FHIR_DATETIME = re.compile(
    r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?)?)?$")


def instant(moment: datetime) -> str:
    """A FHIR instant: ``2026-01-01T12:00:00.000Z``."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def http_date(moment: datetime) -> str:
    """An HTTP date for Last-Modified."""
    return format_datetime(moment, usegmt=True)


def etag(version: int) -> str:
    """The weak ETag FHIR uses for a version: ``W/"3"``."""
    return f'W/"{version}"'


class Renderer:
    """Writes records as Patients; knows routing.yaml for authority systems and facility names."""

    def __init__(self, rules: RoutingRules) -> None:
        self._rules = rules
        self._systems: dict[str, str] = {}

    def patient(self, record: SourceRecord, replaces: tuple[str, ...] = ()) -> dict[str, Any]:
        """The Patient resource of ``record``."""
        d = record.demographics
        resource: dict[str, Any] = {
            "resourceType": "Patient", "id": record.id,
            "meta": {"versionId": str(record.version), "lastUpdated": instant(record.updated_at)}}
        if d.mothers_maiden_name:
            resource["extension"] = [{"url": MOTHERS_MAIDEN_NAME, "valueString": d.mothers_maiden_name}]
        identifiers = [self.identifier(i) for i in d.identifiers]
        if d.ssn and not any(i.value == d.ssn and i.type_code in {"SS", "SSN"} for i in d.identifiers):
            identifiers.append(self.identifier(Identifier(d.ssn, SSN_SYSTEM, "SS")))
        _put(resource, "identifier", identifiers)
        active = False if not record.is_active else d.active
        if active is not None:
            resource["active"] = active
        _put(resource, "name", [_name(n) for n in d.names])
        _put(resource, "telecom", [_telecom(t) for t in (*d.phones, *d.emails)])
        _put(resource, "gender", d.sex)
        _put(resource, "birthDate", d.birth_date)
        _deceased(resource, d)
        _put(resource, "address", [_address(a) for a in d.addresses])
        resource["managingOrganization"] = self._organization(record.key.facility)
        links = ([{"other": {"reference": f"Patient/{record.merged_into}"}, "type": "replaced-by"}]
                 if record.merged_into else [])
        links += [{"other": {"reference": f"Patient/{other}"}, "type": "replaces"} for other in replaces]
        _put(resource, "link", links)
        return resource

    def identifier(self, identifier: Identifier) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if identifier.type_code:
            result["type"] = {"coding": [{"system": V2_0203[0], "code": identifier.type_code}]}
        if identifier.authority:
            result["system"] = self.system(identifier.authority)
        result["value"] = identifier.value
        return result

    def system(self, authority: str) -> str:
        """The identifier system for an authority code."""
        system = self._systems.get(authority)
        if system is None:
            system = self._systems[authority] = self._system(authority)
        return system

    def _system(self, authority: str) -> str:
        for known in self._rules.authorities:
            if known.code == authority:
                for alias in known.aliases:
                    if _URI.match(alias):
                        return alias
        if _OID.match(authority):
            return f"urn:oid:{authority}"
        if _URI.match(authority):
            return authority
        return f"{AUTHORITY_SYSTEM}{authority}"

    def _organization(self, code: str) -> dict[str, Any]:
        facility = self._rules.facility(code)
        return {"identifier": {"system": FACILITY_SYSTEM, "value": code},
                "display": (facility.name if facility is not None and facility.name else code)}


def _put(resource: dict[str, Any], name: str, value: Any) -> None:
    if value:
        resource[name] = value


def _name(name: PersonName) -> dict[str, Any]:
    result: dict[str, Any] = {}
    _put(result, "use", name.use)
    _put(result, "family", name.family)
    _put(result, "given", list(name.given))
    _put(result, "prefix", [name.prefix] if name.prefix else [])
    _put(result, "suffix", [name.suffix] if name.suffix else [])
    return result


def _telecom(telecom: Telecom) -> dict[str, Any]:
    result = {"system": telecom.system or "phone", "value": telecom.value}
    _put(result, "use", telecom.use)
    return result


def _address(address: Address) -> dict[str, Any]:
    result: dict[str, Any] = {}
    _put(result, "use", address.use)
    _put(result, "line", list(address.lines))
    for name, value in (("city", address.city), ("state", address.state),
                        ("postalCode", address.postal_code), ("country", address.country)):
        _put(result, name, value)
    return result


def _deceased(resource: dict[str, Any], d: Demographics) -> None:
    if d.deceased_at:
        # HL7 times may lack seconds or a zone, which a FHIR dateTime needs: keep the date then.
        value = d.deceased_at if _FHIR_DATETIME.match(d.deceased_at) else d.deceased_at[:10]
        resource["deceasedDateTime"] = value
    elif d.deceased is not None:
        resource["deceasedBoolean"] = d.deceased
