"""A validated FHIR Patient translated into the canonical ``SavePatientResource`` command.

The mapping mirrors the HL7 v2 one (``inbound.hl7.translate``) so that the same person sent
as ADT and as FHIR lands on one MPI patient:

- ``identifier``: system -> assigning authority through routing.yaml's ``authorities``
  (URIs, ``urn:oid:`` OIDs and HL7 namespaces resolve to one code); ``type`` coding of
  v2-0203 -> MR/SS/...; the us-ssn system marks an SSN. The record is keyed as HL7 PID-3 is
  (``mpi.keys``: the facility's authority, its preference list, then type MR, MRN, ...;
  never by order), among identifiers with an authority that are not ``use: old``; none is
  a 422. The same number sent typed and untyped is one identifier.
- ``name`` with use, ``birthDate`` (precision kept), ``gender``, ``address``, ``telecom``
  (phones and e-mails, with use), mother's maiden name extension, ``active``,
  ``deceased[x]``: straight across. A FHIR write replaces the whole record.
- ``link`` replaced-by / replaces -> a record merge; refer / seealso are informational.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from engine.commands import MessageOrigin, RecordLink, SavePatientResource
from engine.membership_rules import EnrollRule
from engine.rules import Facility, FhirClient, RoutingRules
from inbound.fhir import datatypes as dt
from inbound.fhir.checks import check_identifier
from inbound.fhir.errors import FhirError
from inbound.fhir.facility import sending_facility
from mpi.keys import record_key_identifier
from mpi.limits import AUTHORITY_CHARS, IDENTIFIER_VALUE_CHARS, RECORD_ID_CHARS, value_problem
from mpi.model import Demographics, Identifier, RecordKey, distinct_identifiers

__all__ = ["MOTHERS_MAIDEN_NAME", "WriteRequest", "conditional_identifiers", "demographics",
           "patient_command"]

MOTHERS_MAIDEN_NAME = "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"
_SSN_TYPES = frozenset({"SS", "SSN"})

Resolve = Callable[[str], str | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteRequest:
    """Everything about a write that is not in the resource itself."""

    rules: RoutingRules
    client: FhirClient | None
    control_id: str
    interaction: Literal["create", "update"]
    record_id: str | None = None
    expected_version: int | None = None
    if_none_exist: tuple[Identifier, ...] = ()
    path: str = "Patient"  # where the resource sits, for error expressions
    #: Maps a Patient reference to a record id (transactions add their urn:uuid entries).
    resolve: Resolve | None = None


def patient_command(data: dict[str, Any], request: WriteRequest) -> tuple[SavePatientResource, str]:
    """The command for one Patient, and why its facility was chosen."""
    facility, why = sending_facility(data, request.rules, request.client, request.path)
    demo, key = demographics(data, facility, request.rules, request.path)
    sender = f"fhir:{request.client.name}" if request.client else f"fhir:{facility.code}"
    origin = MessageOrigin(channel="fhir", sender=sender, control_id=request.control_id,
                           message_type=f"Patient.{request.interaction}", facility=facility.code)
    links = _links(data, request.path, request.resolve or _local_reference)
    command = SavePatientResource(origin=origin, record_id=request.record_id, key=key,
                                  demographics=demo, expected_version=request.expected_version,
                                  if_none_exist=request.if_none_exist, links=links,
                                  enroll=_enroll_rule(request, facility))
    return command, why


def _enroll_rule(request: WriteRequest, facility: Facility) -> EnrollRule | None:
    """``fhir.enroll`` for creates from the facilities it names (``*``: any)."""
    rule = request.rules.fhir.enroll
    if rule is None or request.interaction != "create":
        return None
    return rule if "*" in rule.facilities or facility.code in rule.facilities else None


def demographics(data: dict[str, Any], facility: Facility, rules: RoutingRules,
                 path: str = "Patient") -> tuple[Demographics, RecordKey]:
    """The demographics a Patient states, and the key of the facility's record."""
    candidates = [(dt.identifier(i, facility.default_authority, rules.canonical_authority),
                   i.get("use", "")) for i in data.get("identifier") or ()]
    for number, (identifier, _) in enumerate(candidates):
        if identifier is not None:
            check_identifier(identifier, f"{path}.identifier[{number}]")
    identifiers = distinct_identifiers(i for i, _ in candidates if i is not None)
    primary = _primary([i for i, use in candidates if i is not None and use != "old"],
                       rules.key_authorities(facility), path)
    telecoms = dt.unique(dt.telecom(t) for t in data.get("telecom") or ())
    deceased_at = data.get("deceasedDateTime")
    values = Demographics(
        identifiers=identifiers,
        names=dt.unique(dt.name(n) for n in data.get("name") or ()),
        birth_date=data.get("birthDate") or "",
        sex=data.get("gender") or "",
        addresses=dt.unique(dt.address(a) for a in data.get("address") or ()),
        phones=tuple(t for t in telecoms if t.system != "email"),
        emails=tuple(t for t in telecoms if t.system == "email"),
        mothers_maiden_name=_mothers_maiden_name(data),
        ssn=next((i.value for i in identifiers if i.type_code in _SSN_TYPES), ""),
        deceased=True if deceased_at else data.get("deceasedBoolean"),
        deceased_at=deceased_at or "",
        active=data.get("active"),
    )
    return values, RecordKey(facility.code, primary.authority, primary.value)


def _primary(usable: list[Identifier], authorities: tuple[str, ...], path: str) -> Identifier:
    """The identifier a record is keyed by, chosen by the rule HL7 PID-3 follows (``mpi.keys``)."""
    chosen = record_key_identifier(usable, authorities)
    if chosen is None:
        raise FhirError(422, "the Patient has no identifier portalbridge can key its record by: "
                        "give an identifier with a value (an MRN, with the system of its assigning "
                        "authority); SSNs and identifiers with use 'old' do not count",
                        f"{path}.identifier", code="required")
    return chosen


def _mothers_maiden_name(data: dict[str, Any]) -> str:
    for extension in data.get("extension") or ():
        if extension.get("url") == MOTHERS_MAIDEN_NAME and isinstance(extension.get("valueString"), str):
            return str(extension["valueString"]).strip()
    return ""


def _links(data: dict[str, Any], path: str, resolve: Resolve) -> tuple[RecordLink, ...]:
    links: list[RecordLink] = []
    for number, link in enumerate(data.get("link") or ()):
        kind = link.get("type")
        if kind not in ("replaced-by", "replaces"):
            continue  # refer / seealso: informational, nothing to merge
        reference = (link.get("other") or {}).get("reference")
        target = resolve(reference) if isinstance(reference, str) else None
        if target is None or value_problem(target, RECORD_ID_CHARS) is not None:
            raise FhirError(422, f"a '{kind}' link must reference a Patient of this server "
                            "(Patient/<id>, or a urn:uuid of a Patient entry in the same "
                            "transaction)", f"{path}.link[{number}].other", code="not-supported")
        links.append(RecordLink(other_record_id=target, kind=kind))
    return tuple(links)


def _local_reference(reference: str) -> str | None:
    return dt.reference_id(reference, "Patient")


def conditional_identifiers(query: str, rules: RoutingRules, where: str) -> tuple[Identifier, ...]:
    """``If-None-Exist: identifier=system|value[&identifier=...]`` as index identifiers."""
    pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    if not pairs:
        raise FhirError(400, "the condition is empty", where, code="invalid")
    found: list[Identifier] = []
    for name, value in pairs:
        system, bar, code = value.partition("|")
        if name != "identifier" or not bar or not system or not code:
            raise FhirError(400, "portalbridge supports conditions of the form "
                            "identifier=system|value (repeat with & for several)", where,
                            code="not-supported")
        system = system.removeprefix(dt.AUTHORITY_SYSTEM)
        identifier = Identifier(code.strip(), rules.canonical_authority(system.strip()))
        if (value_problem(identifier.value, IDENTIFIER_VALUE_CHARS)
                or value_problem(identifier.authority, AUTHORITY_CHARS)):
            raise FhirError(400, "the condition names an identifier the patient index cannot "
                            "hold (too long, or a character that cannot be stored)", where,
                            code="value")
        found.append(identifier)
    return tuple(found)
