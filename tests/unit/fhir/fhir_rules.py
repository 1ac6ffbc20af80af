"""Routing rules for the FHIR unit tests: facilities with aliases, authorities, clients."""

from __future__ import annotations

import hashlib

from engine.rules import RoutingRules, parse_rules

CLINIC_TOKEN = "clinic-secret-token"

RULES_YAML = f"""
version: 1
facilities:
  - {{code: NORTH, name: North General, tier: 1, assigning_authority: NGH, aliases: ["North General"]}}
  - {{code: EAST, name: East Clinic, tier: 2, assigning_authority: ECC, aliases: ["urn:oid:1.2.3.9"]}}
routes:
  - {{match: {{message_type: ADT}}, action: upsert_patient}}
authorities:
  - {{code: NGH, aliases: ["http://north.example.org/mrn", "urn:oid:2.16.840.1.113883.3.9999.1"]}}
fhir:
  clients:
    - {{name: east-emr, facility: EAST, token_sha256: "{hashlib.sha256(CLINIC_TOKEN.encode()).hexdigest()}"}}
"""


def fhir_rules(*, clients: bool = True, anonymous: bool | None = None) -> RoutingRules:
    """The rules with the east-emr client, or without it and (unless told otherwise) with
    anonymous requests allowed, the demo mode in which a resource names its facility."""
    text = RULES_YAML if clients else RULES_YAML.split("fhir:", maxsplit=1)[0]
    if anonymous or (anonymous is None and not clients):
        text += "" if clients else "fhir:\n"
        text += "  allow_anonymous: true\n"
    return parse_rules(text)
