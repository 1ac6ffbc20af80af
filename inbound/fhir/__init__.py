"""FHIR in: Patient resources and transaction/batch Bundles into the same MPI path as HL7 v2.

Layers, each testable on its own: ``jsonbody`` (bytes to JSON), ``parse`` (fhir.resources
validation in the right FHIR version) and ``checks``; ``auth`` (bearer tokens) and
``facility`` (who is sending); ``translate`` and ``datatypes`` (to the canonical command);
``render`` (records as Patients); ``outcome`` (errors as OperationOutcomes); ``service``,
``bundle`` and ``references`` (the interactions); ``capability`` (the CapabilityStatement);
``explain`` (``route explain`` for FHIR). The web framework is in ``inbound.http.fhir``.
"""

from __future__ import annotations

from inbound.fhir.auth import authenticate
from inbound.fhir.bundle import process_bundle
from inbound.fhir.capability import capability_statement
from inbound.fhir.errors import FhirError, Issue
from inbound.fhir.explain import explain_fhir
from inbound.fhir.jsonbody import read_json
from inbound.fhir.outcome import error_outcome, issues_of, operation_outcome
from inbound.fhir.parse import FhirVersion, choose_version, validate_patient, version_of_media_type
from inbound.fhir.render import Renderer
from inbound.fhir.service import Apply, Call, FhirApi, FhirResponse
from inbound.fhir.translate import WriteRequest, patient_command

__all__ = [
    "Apply",
    "Call",
    "FhirApi",
    "FhirError",
    "FhirResponse",
    "FhirVersion",
    "Issue",
    "Renderer",
    "WriteRequest",
    "authenticate",
    "capability_statement",
    "choose_version",
    "error_outcome",
    "explain_fhir",
    "issues_of",
    "operation_outcome",
    "patient_command",
    "process_bundle",
    "read_json",
    "validate_patient",
    "version_of_media_type",
]
