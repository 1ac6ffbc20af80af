"""The routing.yaml that fuzzing and the memory benchmark feed: the corpus' facilities, the
shipped ADT routes, and one FHIR client with a known token."""

from __future__ import annotations

import hashlib


def fuzz_rules(client: str, token: str) -> str:
    """The rules text, with ``client`` admitted to FHIR by ``token`` (as the facility CLINIC)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    return f"""
version: 1
facilities:
  - {{code: GHH, name: Good Health Hospital, tier: 1, assigning_authority: GHH,
     aliases: [GHHSFacility, "2.16.840.1.122848.1.30", "GOOD HEALTH HOSPITAL"]}}
  - {{code: CLINIC, name: Community Clinic, tier: 2, assigning_authority: CLN}}
  - {{code: SENDFAC, name: any other sender, tier: 5, aliases: ["SEND FAC"]}}
routes:
  - {{match: {{message_type: ADT, trigger: [A01, A04, A05, A08, A28, A31]}}, action: upsert_patient}}
  - {{match: {{message_type: ADT, trigger: A40}}, action: merge_patients}}
  - {{match: {{message_type: ADT, trigger: A47}}, action: change_identifier}}
  - {{match: {{message_type: ADT}}, action: ignore, reason: not used}}
  - {{match: {{message_type: "*"}}, action: reject, reason: ADT only}}
fhir:
  clients: [{{name: {client}, facility: CLINIC, token_sha256: "{digest}"}}]
"""
