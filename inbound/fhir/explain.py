"""``portalbridge route explain FILE.json``: how a FHIR Patient or Bundle would be read,
which facility it would be attributed to, and what it would change. Nothing is kept: the
dry run applies the commands in a transaction that is rolled back.

A file explains as the body of ``POST [base]/Patient`` (a Patient) or ``POST [base]``
(a transaction or batch Bundle), without a bearer token: the facility comes from the
resource, as for an API with no clients configured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.commands import ApplyAtomically, Command, MessageOrigin, Outcome, SavePatientResource
from engine.errors import EngineError
from engine.rules import RoutingRules
from inbound.fhir.errors import FhirError
from inbound.fhir.jsonbody import read_json
from inbound.fhir.outcome import issues_of, status_line, status_of
from inbound.fhir.parse import FhirVersion, choose_version, validate_bundle, validate_patient
from inbound.fhir.translate import WriteRequest, patient_command

__all__ = ["explain_fhir"]

DryRun = Callable[[Command], Outcome]
_CONTROL_ID = "route-explain"


def explain_fhir(raw: bytes, rules: RoutingRules, dry_run: DryRun) -> tuple[list[str], bool]:
    """Report lines, and whether everything in the file would be accepted."""
    lines: list[str] = []
    try:
        data = read_json(raw, "Resource")
        version = choose_version(None, data, rules.fhir.default_version)
        kind = data.get("resourceType")
        lines.append(f"read as FHIR {version} {kind or '(no resourceType)'}"
                     + ("; a UTF-8 byte-order mark was dropped" if raw.startswith(b"\xef\xbb\xbf") else ""))
        if kind == "Bundle":
            return _bundle(data, version, rules, dry_run, lines)
        lines += _patient(data, version, rules, dry_run)
        return lines, True
    except EngineError as exc:
        return [*lines, *_refusal(exc)], False


def _patient(data: dict[str, Any], version: FhirVersion, rules: RoutingRules, dry_run: DryRun,
             *, path: str = "Patient", control_id: str = _CONTROL_ID) -> list[str]:
    lines = ["as POST [base]/Patient (create)" if path == "Patient" else ""]
    validate_patient(data, version, path)
    command, why = patient_command(data, WriteRequest(
        rules=rules, client=None, control_id=control_id, interaction="create", path=path))
    lines += [f"facility: {why}", *_intent(command, rules)]
    lines += _effects(dry_run(command))
    return [line for line in lines if line]


def _intent(command: SavePatientResource, rules: RoutingRules) -> list[str]:
    shown = [f"{i.authority}|{i.value}" + (f" ({i.type_code})" if i.type_code else "")
             for i in command.demographics.identifiers]
    lines = [f"would save record {command.key} (whole record replaced)",
             f"identifiers: {'; '.join(shown)}"]
    if rules.fhir.clients:
        lines.append("note: routing.yaml lists FHIR clients; a real request needs a token and "
                     "writes for its client's facility")
    lines += [f"would {link.kind.replace('-', ' ')} record {link.other_record_id}" for link in command.links]
    return lines


def _effects(outcome: Outcome) -> list[str]:
    state = outcome.resource
    if state is None:
        return ["already committed before: would not apply again"]
    verb = "create" if state.created else ("update" if state.changed else "leave unchanged")
    lines = [f"would {verb} record {state.record_id} (version {state.version}): HTTP "
             f"{status_line(201 if state.created else 200)}"]
    for change in outcome.changes:
        state_word = "new patient" if change.created else "patient"
        lines.append(f"{state_word} {change.patient_id}: best demographics from "
                     f"{change.winner_facility or '-'} (tier {change.winner_tier}); "
                     f"fields changed: {', '.join(change.changed) or 'none'}")
    lines.append(f"events written to the outbox: {outcome.events}")
    return lines


def _bundle(data: dict[str, Any], version: FhirVersion, rules: RoutingRules, dry_run: DryRun,
            lines: list[str]) -> tuple[list[str], bool]:
    validate_bundle(data, version)
    kind = data.get("type")
    if kind not in ("transaction", "batch"):
        raise FhirError(400, f"a Bundle of type '{kind}' cannot be processed", "Bundle.type",
                        code="not-supported")
    lines.append(f"as POST [base] ({kind}: " + ("all entries or none)" if kind == "transaction"
                                                else "each entry on its own)"))
    commands: list[SavePatientResource] = []
    accepted = True
    for number, entry in enumerate(data.get("entry") or ()):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        if rtype != "Patient" or not isinstance(resource, dict):
            lines.append(f"entry {number}: {rtype or 'no resource'}: refused, "
                         f"{status_line(404)} (Patient entries only)")
            accepted = False
            continue
        path = f"Bundle.entry[{number}].resource"
        try:
            if kind == "batch":
                lines += [f"entry {number}:", *(f"  {line}" for line in _patient(
                    resource, version, rules, dry_run, path=path,
                    control_id=f"{_CONTROL_ID}#{number}"))]
                continue
            validate_patient(resource, version, path)
            command, why = patient_command(resource, WriteRequest(
                rules=rules, client=None, control_id=f"{_CONTROL_ID}#{number}",
                interaction="create", path=path))
            commands.append(command)
            lines += [f"entry {number}: {why}", *(f"  {line}" for line in _intent(command, rules))]
        except EngineError as exc:
            lines += [f"entry {number}:", *(f"  {line}" for line in _refusal(exc))]
            accepted = False
    if kind == "transaction" and commands and accepted:
        first = commands[0].origin
        origin = MessageOrigin(channel="fhir", sender=first.sender, control_id=_CONTROL_ID,
                               message_type="transaction", facility=first.facility)
        outcome = dry_run(ApplyAtomically(origin=origin, commands=tuple(commands)))
        for number, part in enumerate(outcome.parts):
            lines += [f"part {number}:", *(f"  {line}" for line in _effects(part))]
    elif kind == "transaction" and not accepted:
        lines.append("the transaction would be refused as a whole")
    return lines, accepted


def _refusal(error: EngineError) -> list[str]:
    lines = [f"refused at {issue.expression}: {issue.diagnostics}" for issue in issues_of(error)]
    return [*lines, f"HTTP answer: {status_line(status_of(error))}"]
