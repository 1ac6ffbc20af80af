"""``portalbridge route explain FILE.json``: what the FHIR API would answer, and why.

The file goes through the very code the API runs (``read_json``, ``FhirApi.create``,
``process_bundle``), with one difference: the commands are applied by a dry run, in a
transaction that is rolled back. So every status and every OperationOutcome expression is
the API's own, for a Patient and for each entry of a Bundle (conditional URLs, ``ifMatch``,
``ifNoneExist``, DELETE and GET entries), and nothing is kept.

A file is explained as the body of ``POST [base]/Patient`` (a Patient) or ``POST [base]``
(a Bundle), without a bearer token: the facility comes from the resource, as for an API
with ``fhir.allow_anonymous``. Two entries of one batch do not see each other's dry runs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.commands import ApplyAtomically, Command, Outcome, SavePatientResource
from engine.domain.clock import IdSource
from engine.errors import EngineError
from engine.rules import RoutingRules
from inbound.fhir.bundle import process_bundle
from inbound.fhir.facility import sending_facility
from inbound.fhir.jsonbody import read_json
from inbound.fhir.outcome import error_outcome, status_line
from inbound.fhir.parse import choose_version
from inbound.fhir.service import Call, FhirApi, FhirResponse
from mpi.search import MpiSearch

__all__ = ["EXPLAIN_BASE", "explain_fhir"]

DryRun = Callable[[Command], Outcome]
#: The base URL entries' absolute URLs are read against (a file names no server).
EXPLAIN_BASE = "http://portalbridge.invalid/fhir"
_REQUEST_ID = "route-explain"
_RESOURCE_TYPE = re.compile(rb'"resourceType"\s*:\s*"([A-Za-z]+)"')


@dataclass
class _DryRuns:
    """The API's ``apply``: dry runs one at a time, each command and outcome kept by part."""

    dry_run: DryRun
    applied: dict[str, tuple[SavePatientResource, Outcome]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def apply(self, command: Command) -> Outcome:
        async with self.lock:  # one rolled-back transaction at a time
            outcome = await asyncio.to_thread(self.dry_run, command)
        parts = command.commands if isinstance(command, ApplyAtomically) else (command,)
        for part, result in zip(parts, outcome.parts or (outcome,), strict=False):
            if isinstance(part, SavePatientResource):
                self.applied[part.origin.control_id] = (part, result)
        return outcome


def explain_fhir(raw: bytes, rules: RoutingRules, dry_run: DryRun, search: MpiSearch,
                 ids: IdSource) -> tuple[list[str], bool]:
    """Report lines, and whether the API would accept everything in the file."""
    found = _RESOURCE_TYPE.search(raw)
    root = "Bundle" if found is not None and found.group(1) == b"Bundle" else "Patient"
    runs = _DryRuns(dry_run)
    api = FhirApi(apply=runs.apply, search=search, rules=rules, ids=ids)
    call = Call(base=EXPLAIN_BASE, client=None, request_id=_REQUEST_ID)
    data, response = asyncio.run(_answer(api, call, raw, root))
    lines = [_heading(raw, data, rules, root)]
    if not rules.fhir.allow_anonymous:
        lines.append("note: a real request needs a FHIR client's token and writes for its "
                     "client's facility")
    accepted = response.status < 400
    if root == "Bundle" and response.status == 200 and response.body is not None:
        for number, entry in enumerate(response.body.get("entry") or ()):
            resource = _entry_resource(data, number)
            lines += _entry_lines(f"entry {number}", entry.get("response", {}), resource,
                                  runs.applied.get(f"{_REQUEST_ID}#{number}"), rules)
            accepted &= _status(entry.get("response", {})) < 400
    elif response.status < 400:
        lines += _written(data or {}, runs.applied.get(_REQUEST_ID), rules, "Patient")
    else:
        lines += _issues(response.body)
    lines.append(f"HTTP answer: {status_line(response.status)}")
    return lines, accepted


async def _answer(api: FhirApi, call: Call, raw: bytes,
                  root: str) -> tuple[dict[str, Any] | None, FhirResponse]:
    """What ``POST [base]/Patient`` or ``POST [base]`` answers with this body."""
    data: dict[str, Any] | None = None
    try:
        data = read_json(raw, root)
        if root == "Bundle":
            return data, await process_bundle(api, call, data)
        return data, await api.create(call, data, None)
    except EngineError as exc:
        status, outcome, _ = error_outcome(exc, root)
        return data, FhirResponse(status, outcome)


def _heading(raw: bytes, data: dict[str, Any] | None, rules: RoutingRules, root: str) -> str:
    kind = data.get("resourceType") if data else None
    try:
        version = choose_version(None, data or {}, rules.fhir.default_version)
    except EngineError:
        version = rules.fhir.default_version
    bom = "; a UTF-8 byte-order mark was dropped" if raw.startswith(b"\xef\xbb\xbf") else ""
    request = ("POST [base]/Patient (create)" if root == "Patient" else
               f"POST [base] ({(data or {}).get('type', '?')}: " + (
                   "all entries or none)" if (data or {}).get("type") == "transaction"
                   else "each entry on its own)"))
    return f"read as FHIR {version} {kind or '(no resourceType)'}{bom}, as {request}"


def _entry_resource(data: dict[str, Any] | None, number: int) -> dict[str, Any]:
    entries = (data or {}).get("entry") or []
    entry = entries[number] if number < len(entries) and isinstance(entries[number], dict) else {}
    resource = entry.get("resource")
    return resource if isinstance(resource, dict) else {}


def _status(response: dict[str, Any]) -> int:
    return int(str(response.get("status", "500")).split()[0])


def _entry_lines(label: str, response: dict[str, Any], resource: dict[str, Any],
                 applied: tuple[SavePatientResource, Outcome] | None,
                 rules: RoutingRules) -> list[str]:
    lines = [f"{label}: {response.get('status', '?')}"]
    if "outcome" in response:
        lines += [f"  {line}" for line in _issues(response["outcome"])]
    else:
        lines += [f"  {line}" for line in _written(resource, applied, rules, "Patient")]
    return lines


def _issues(outcome: dict[str, Any] | None) -> list[str]:
    return [f"refused at {', '.join(i.get('expression') or ['-'])}: {i.get('diagnostics', '')}"
            for i in (outcome or {}).get("issue", ())]


def _written(resource: dict[str, Any], applied: tuple[SavePatientResource, Outcome] | None,
             rules: RoutingRules, path: str) -> list[str]:
    if applied is None:
        return ["already committed before: would not apply again"]
    command, outcome = applied
    lines: list[str] = []
    try:
        lines.append(f"facility: {sending_facility(resource, rules, None, path)[1]}")
    except EngineError:
        lines.append(f"facility: {command.origin.facility}")
    shown = [f"{i.authority}|{i.value}" + (f" ({i.type_code})" if i.type_code else "")
             for i in command.demographics.identifiers]
    lines += [f"would save record {command.key} (whole record replaced)",
              f"identifiers: {'; '.join(shown)}"]
    lines += [f"would {link.kind.replace('-', ' ')} record {link.other_record_id}"
              for link in command.links]
    return lines + _effects(outcome)


def _effects(outcome: Outcome) -> list[str]:
    state = outcome.resource
    if state is None:
        return ["already committed before: would not apply again"]
    verb = "create" if state.created else ("update" if state.changed else "leave unchanged")
    lines = [f"would {verb} record {state.record_id} (version {state.version})"]
    for change in outcome.changes:
        state_word = "new patient" if change.created else "patient"
        lines.append(f"{state_word} {change.patient_id}: best demographics from "
                     f"{change.winner_facility or '-'} (tier {change.winner_tier}); "
                     f"fields changed: {', '.join(change.changed) or 'none'}")
    lines.append(f"events written to the outbox: {outcome.events}")
    return lines
