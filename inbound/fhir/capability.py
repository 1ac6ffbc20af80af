"""The CapabilityStatement: exactly what this FHIR endpoint does, and nothing it does not."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.rules import RoutingRules
from inbound.fhir.parse import SUPPORTED_VERSIONS
from inbound.fhir.render import instant

__all__ = ["capability_statement"]

_PATIENT_DOC = (
    "Patient resources are the source records of the portal's master patient index: one per "
    "facility and identifier. create (conditional with If-None-Exist: identifier=system|value), "
    "update (If-Match with W/\"n\" ETags; update creates when the id is new), read, vread of the "
    "current version only (history is not kept), search by identifier. A write is answered "
    "after it is committed. An identical resend does not create a new version.")
_SECURITY_DOC = (
    "Authorization: Bearer <token>; each token is bound to a facility in routing.yaml "
    "(fhir.clients), and writes are attributed to that facility.")
_OPEN_DOC = ("No clients are configured: requests are not authenticated and each resource names "
             "its facility (managingOrganization or identifier assigner).")


def capability_statement(rules: RoutingRules, *, base: str, software_version: str,
                         published: datetime) -> dict[str, Any]:
    """The statement for ``GET [base]/metadata``."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(published),
        "publisher": "portalbridge",
        "kind": "instance",
        "software": {"name": "portalbridge", "version": software_version},
        "implementation": {"description": "portalbridge FHIR API (Patient into the MPI)",
                           "url": base},
        "fhirVersion": SUPPORTED_VERSIONS[rules.fhir.default_version],
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": (
                "Bodies are application/fhir+json (application/json is accepted too); other "
                "media types are refused with 415. R4 (default) and R4B/R5 are read: choose "
                "with the fhirVersion parameter of the Content-Type or a versioned "
                f"meta.profile. Bodies over {rules.fhir.max_body_bytes} bytes are refused "
                "with 413. Unknown elements, duplicate JSON keys and bare nulls in arrays are "
                "refused with 400; modifier extensions with 422."),
            "security": {"description": _SECURITY_DOC if rules.fhir.clients else _OPEN_DOC},
            "resource": [{
                "type": "Patient",
                "profile": "http://hl7.org/fhir/StructureDefinition/Patient",
                "documentation": _PATIENT_DOC,
                "interaction": [{"code": code} for code in
                                ("read", "vread", "update", "create", "search-type")],
                "versioning": "versioned-update",
                "readHistory": False,
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalRead": "not-supported",
                "conditionalUpdate": False,
                "conditionalDelete": "not-supported",
                "searchParam": [{
                    "name": "identifier", "type": "token",
                    "definition": "http://hl7.org/fhir/SearchParameter/Patient-identifier",
                    "documentation": "system|value, |value or value; commas mean OR, repeats AND"}],
            }],
            "interaction": [
                {"code": "transaction", "documentation": "POST and PUT of Patient entries, all "
                 "or nothing; urn:uuid fullUrls of POSTed Patients resolve in Patient.link"},
                {"code": "batch", "documentation": "POST and PUT of Patient entries, each on "
                 "its own; other resource types are answered 404 per entry"},
            ],
        }],
    }
