"""Bundles POSTed to the FHIR base: ``transaction`` (all or nothing) and ``batch`` (each alone).

Entries may POST ``Patient`` (create, optionally with ``ifNoneExist``) or PUT
``Patient/<id>`` (update or create-on-update, optionally with ``ifMatch``). Any other
resource type is a 404 and any other method a 405, for that entry.

- transaction: every entry is checked first; the first problem refuses the whole Bundle
  with an OperationOutcome pointing into that entry. The commands then go to the core as one
  ``ApplyAtomically``: one commit, or none. POSTs run before PUTs (FHIR's processing order);
  ``urn:uuid`` fullUrls that other entries reference (``Patient.link``) are bound to record
  ids first (``inbound.fhir.references``), so references resolve inside the transaction.
- batch: each entry is planned and applied on its own; the applies are submitted together so
  the group committer commits them in as few transactions as it can. References between
  entries are not allowed (FHIR forbids interdependent batch entries).

Each part carries its own control id, ``<request id>#<entry index>``: the inbox dedupes on
(sender, control id), so parts must never share one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.commands import ApplyAtomically, MessageOrigin, Outcome, SavePatientResource
from engine.errors import EngineError, RejectedMessage
from inbound.fhir.datatypes import reference_id
from inbound.fhir.errors import FhirError, place_under
from inbound.fhir.jsonbody import JsonObject
from inbound.fhir.outcome import error_outcome, fhir_expression, issues_of, status_line, status_of
from inbound.fhir.parse import FhirVersion, choose_version, validate_bundle, validate_patient
from inbound.fhir.references import Planned, bind_references
from inbound.fhir.render import instant
from inbound.fhir.service import Call, FhirApi, FhirResponse, Written, check_id, parse_if_match
from inbound.fhir.translate import WriteRequest, conditional_identifiers, patient_command
from mpi.model import Identifier

__all__ = ["process_bundle"]

Resolve = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class _Entry:
    index: int
    method: str
    url: str
    full_url: str
    resource: Any
    if_match: str | None
    if_none_exist: str | None

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}]"


async def process_bundle(api: FhirApi, call: Call, data: dict[str, Any]) -> FhirResponse:
    """POST [base] with a Bundle."""
    version = choose_version(call.version, data, api.rules.fhir.default_version)
    validate_bundle(data, version)
    kind = data.get("type")
    if kind not in ("transaction", "batch"):
        raise FhirError(400, f"a Bundle of type '{kind}' cannot be processed: POST a 'transaction' "
                        "or a 'batch' to the base URL", "Bundle.type", code="not-supported")
    nulls = getattr(data, "may_hold_null", True)  # none in the body: none in its entries
    entries = [_entry(n, e, nulls) for n, e in enumerate(data.get("entry") or ())]
    if kind == "transaction":
        responses = await _transaction(api, call, entries, version)
    else:
        responses = await asyncio.gather(*(_batch_entry(api, call, e, version) for e in entries))
    return FhirResponse(200, {"resourceType": "Bundle", "type": f"{kind}-response",
                              "entry": list(responses)})


def _entry(index: int, data: Any, nulls: bool) -> _Entry:
    request = data.get("request") if isinstance(data, dict) else None
    if not isinstance(request, dict):
        raise FhirError(400, "every entry of a transaction or batch needs a request (method and "
                        "url)", f"Bundle.entry[{index}].request", code="required")
    resource = data.get("resource")
    if isinstance(resource, dict):
        resource = JsonObject(resource, nulls)
    return _Entry(index, str(request.get("method", "")), str(request.get("url", "")),
                  str(data.get("fullUrl") or ""), resource, request.get("ifMatch"),
                  request.get("ifNoneExist"))


# -- transaction ---------------------------------------------------------------------------


async def _transaction(api: FhirApi, call: Call, entries: list[_Entry],
                       version: FhirVersion) -> list[dict[str, Any]]:
    links = {ref for e in entries for ref in _link_references(e.resource)}
    referenced = {e.full_url for e in entries if e.full_url and e.full_url in links}

    def resolve(reference: str) -> str | None:
        # Entries' fullUrls stand for themselves until bind_references picks their ids.
        return reference if reference in referenced else reference_id(reference, "Patient")

    ordered = sorted(entries, key=lambda e: 0 if e.method == "POST" else 1)
    planned = [Planned(e.index, e.full_url, e.method,
                       _plan(api, call, e, version, resolve=resolve)) for e in ordered]
    if not planned:
        return []
    commands = await bind_references(api, planned, referenced)
    first = commands[0].origin
    origin = MessageOrigin(channel="fhir", sender=first.sender, control_id=call.request_id,
                           message_type="transaction", facility=first.facility)
    try:
        outcome = await api.apply(ApplyAtomically(origin=origin, commands=tuple(commands)))
    except EngineError as exc:
        raise _failed_entry(exc, ordered, commands) from exc
    parts = outcome.parts or tuple(Outcome("duplicate") for _ in commands)
    by_index: dict[int, dict[str, Any]] = {}
    linked = any(c.links for c in commands)  # a later part may have merged an earlier record
    for entry, command, part in zip(ordered, commands, parts, strict=True):
        written = await api.written(call, command, part, reread=linked)
        by_index[entry.index] = _success(written, call)
    return [by_index[e.index] for e in entries]


def _link_references(resource: Any) -> list[str]:
    if not isinstance(resource, dict):
        return []
    return [link["other"]["reference"] for link in resource.get("link") or ()
            if isinstance(link, dict) and isinstance(link.get("other"), dict)
            and isinstance(link["other"].get("reference"), str)]


def _failed_entry(error: EngineError, ordered: list[_Entry],
                  commands: list[SavePatientResource]) -> EngineError:
    """The core's refusal, pointed at the entry whose part failed (the bus notes its id)."""
    notes = set(getattr(error, "__notes__", ()))
    entry = next((e for e, c in zip(ordered, commands, strict=True)
                  if f"in part {c.origin.control_id}" in notes), None)
    return error if entry is None else _placed(error, entry)


# -- batch ---------------------------------------------------------------------------------


async def _batch_entry(api: FhirApi, call: Call, entry: _Entry,
                       version: FhirVersion) -> dict[str, Any]:
    try:
        command = _plan(api, call, entry, version, resolve=_local_patient)
        written = await api.written(call, command, await api.apply(command))
    except EngineError as exc:
        status, outcome, _ = error_outcome(_placed(exc, entry))
        return {"response": {"status": status_line(status), "outcome": outcome}}
    return _success(written, call)


def _local_patient(reference: str) -> str | None:
    return None if reference.startswith("urn:") else reference_id(reference, "Patient")


def _placed(error: EngineError, entry: _Entry) -> EngineError:
    """A core refusal of one entry, with its expression inside that entry."""
    if isinstance(error, FhirError) or not isinstance(error, RejectedMessage):
        return error
    request_fields = {"If-Match": "request.ifMatch", "If-None-Exist": "request.ifNoneExist"}
    if error.location in request_fields:
        expression = f"{entry.path}.{request_fields[error.location]}"
    else:
        expression = place_under(f"{entry.path}.resource", fhir_expression(error.location, "Patient"))
    return FhirError(status_of(error), error.reason, expression, code=issues_of(error)[0].code)


# -- planning one entry --------------------------------------------------------------------


def _plan(api: FhirApi, call: Call, entry: _Entry, version: FhirVersion, *,
          resolve: Resolve) -> SavePatientResource:
    """Check one entry and build its command; ``FhirError`` points into the entry."""
    if entry.method not in ("POST", "PUT"):
        raise FhirError(405, f"{entry.method or 'no'} method: Bundle entries may POST or PUT a "
                        "Patient", f"{entry.path}.request.method", code="not-supported")
    segments, query = _url(entry.url, call.base)
    if not segments or segments[0] != "Patient":
        kind = segments[0] if segments else "(none)"
        raise FhirError(404, f"resource type '{kind}' is not supported: portalbridge keeps "
                        "Patient resources only", f"{entry.path}.request.url", code="not-supported")
    expected = 1 if entry.method == "POST" else 2
    if query or len(segments) != expected:
        shape = "Patient" if entry.method == "POST" else "Patient/<id>"
        raise FhirError(400, f"a {entry.method} entry's url must be '{shape}' (conditional "
                        "urls are not supported)", f"{entry.path}.request.url", code="not-supported")
    if not isinstance(entry.resource, dict):
        raise FhirError(400, f"a {entry.method} entry needs a resource", f"{entry.path}.resource",
                        code="required")
    where = f"{entry.path}.resource"
    validate_patient(entry.resource, version, where)
    return _command(api, call, entry, where=where, resolve=resolve,
                    record_id=segments[1] if entry.method == "PUT" else None)


def _command(api: FhirApi, call: Call, entry: _Entry, *, where: str, resolve: Resolve,
             record_id: str | None) -> SavePatientResource:
    conditions: tuple[Identifier, ...] = ()
    if entry.method == "PUT":
        check_id(str(record_id), f"{entry.path}.request.url")
        if entry.resource.get("id") != record_id:
            raise FhirError(400, f"the resource id must equal the id in request.url ('{record_id}')",
                            f"{where}.id", code="invalid")
    elif entry.if_none_exist:
        conditions = conditional_identifiers(entry.if_none_exist, api.rules,
                                             f"{entry.path}.request.ifNoneExist")
    expected = parse_if_match(entry.if_match, f"{entry.path}.request.ifMatch")
    command, _ = patient_command(entry.resource, WriteRequest(
        rules=api.rules, client=call.client, control_id=f"{call.request_id}#{entry.index}",
        interaction="update" if entry.method == "PUT" else "create", record_id=record_id,
        expected_version=expected, if_none_exist=conditions, path=where, resolve=resolve))
    return command


def _url(url: str, base: str) -> tuple[list[str], str]:
    """``Patient/1`` (or ``<base>/Patient/1``) as path segments and query."""
    if url.startswith(f"{base}/"):
        url = url[len(base) + 1:]
    path, _, query = url.partition("?")
    return [s for s in path.split("/") if s], query


def _success(written: Written, call: Call) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": f"{call.base}/Patient/{written.record_id}"}
    if written.resource is not None:
        entry["resource"] = written.resource
    entry["response"] = {"status": status_line(written.status), "location": written.location,
                         "etag": written.etag, "lastModified": instant(written.last_updated)}
    return entry
