"""The FHIR interactions on Patient, independent of the web framework.

Writes become ``SavePatientResource`` commands applied through the group committer: the
answer is sent only after the command's transaction committed. Reads go to ``MpiSearch``.
A write is answered from the committed command when it created the record (no second
read on the hot path) and from a read of the stored record otherwise (an unchanged resend,
a conditional create that matched, an update), so the body is always what is stored.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from engine.commands import Command, Outcome, SavePatientResource
from engine.domain.clock import IdSource
from engine.rules import FhirClient, RoutingRules
from inbound.fhir.datatypes import AUTHORITY_SYSTEM
from inbound.fhir.errors import FhirError, Issue
from inbound.fhir.outcome import operation_outcome
from inbound.fhir.parse import FhirVersion, choose_version, validate_patient
from inbound.fhir.render import Renderer, etag, http_date
from inbound.fhir.translate import WriteRequest, conditional_identifiers, patient_command
from mpi.model import SourceRecord
from mpi.search import MpiSearch, RecordView

__all__ = ["Apply", "Call", "FhirApi", "FhirResponse", "Prefer", "Written", "check_id", "parse_if_match"]

Apply = Callable[[Command], Awaitable[Outcome]]
Prefer = Literal["representation", "minimal", "OperationOutcome"]
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_ETAG = re.compile(r'^(W/)?"(\d{1,9})"$')


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """What one HTTP request brings besides its body."""

    base: str  # absolute base URL of the FHIR API, without a trailing slash
    client: FhirClient | None
    request_id: str
    version: FhirVersion | None = None  # from the Content-Type's fhirVersion parameter
    prefer: Prefer = "representation"
    strict: bool = False  # Prefer: handling=strict


@dataclass(frozen=True, slots=True)
class FhirResponse:
    """Status, JSON body (None for none) and headers of an answer."""

    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Written:
    """How a committed write is answered, alone or as a Bundle response entry."""

    status: int
    record_id: str
    location: str  # the version's URL: [base]/Patient/[id]/_history/[vid]
    etag: str
    last_updated: datetime
    resource: dict[str, Any] | None


class FhirApi:
    """Create, update, read, vread and search of Patient (Bundles: ``inbound.fhir.bundle``)."""

    def __init__(self, *, apply: Apply, search: MpiSearch, rules: RoutingRules,
                 ids: IdSource) -> None:
        self.apply = apply
        self.search = search
        self.rules = rules
        self.ids = ids
        self.renderer = Renderer(rules)

    # -- writes ---------------------------------------------------------------------------

    async def create(self, call: Call, data: dict[str, Any],
                     if_none_exist: str | None) -> FhirResponse:
        """POST /Patient, conditional with If-None-Exist."""
        validate_patient(data, choose_version(call.version, data, self.rules.fhir.default_version))
        conditions = (conditional_identifiers(if_none_exist, self.rules, "http.If-None-Exist")
                      if if_none_exist is not None else ())
        command, _ = patient_command(data, WriteRequest(
            rules=self.rules, client=call.client, control_id=call.request_id, interaction="create",
            if_none_exist=conditions))
        return self.response(call, await self.written(call, command, await self.apply(command)))

    async def update(self, call: Call, record_id: str, data: dict[str, Any],
                     if_match: str | None) -> FhirResponse:
        """PUT /Patient/{id}: update, or create under the client's id; If-Match guards it."""
        check_id(record_id)
        validate_patient(data, choose_version(call.version, data, self.rules.fhir.default_version))
        if data.get("id") != record_id:
            raise FhirError(400, f"the resource id must equal the id in the URL ('{record_id}') "
                            f"for an update; found {data.get('id')!r}", "Patient.id", code="invalid")
        command, _ = patient_command(data, WriteRequest(
            rules=self.rules, client=call.client, control_id=call.request_id, interaction="update",
            record_id=record_id, expected_version=parse_if_match(if_match)))
        return self.response(call, await self.written(call, command, await self.apply(command)))

    async def written(self, call: Call, command: SavePatientResource, outcome: Outcome, *,
                      reread: bool = False) -> Written:
        """How the committed ``command`` is answered; ``reread`` when other commands of the
        same commit may have changed the record too (a transaction with links)."""
        state = outcome.resource
        if state is None or state.last_updated is None:  # a resend the inbox caught: re-read
            view = await asyncio.to_thread(self.search.record_with_key, command.key)
            if view is None:
                raise FhirError(409, "the request was applied before, and its record no longer "
                                "exists under that identifier", "Patient.identifier", code="conflict")
            return self._from_record(call, view, 200)
        status = 201 if state.created else 200
        record = SourceRecord(id=state.record_id, key=command.key, patient_id="",
                              demographics=command.demographics, created_at=state.last_updated,
                              updated_at=state.last_updated, version=state.version)
        if call.prefer != "representation" or (state.created and not command.links and not reread):
            return self._written(call, record, status, None if call.prefer != "representation"
                                 else self.renderer.patient(record))
        view = await asyncio.to_thread(self.search.record, state.record_id)
        return self._from_record(call, view, status) if view else self._written(call, record, status, None)

    def _from_record(self, call: Call, view: RecordView, status: int) -> Written:
        return self._written(call, view.record, status, self.renderer.patient(view.record, view.replaces))

    @staticmethod
    def _written(call: Call, record: SourceRecord, status: int,
                 resource: dict[str, Any] | None) -> Written:
        return Written(status, record.id, f"{call.base}/Patient/{record.id}/_history/{record.version}",
                       etag(record.version), record.updated_at, resource)

    def response(self, call: Call, written: Written) -> FhirResponse:
        headers = {"Location": written.location, "ETag": written.etag,
                   "Last-Modified": http_date(written.last_updated)}
        if call.prefer == "OperationOutcome":
            word = "created" if written.status == 201 else "stored"
            return FhirResponse(written.status, operation_outcome((Issue(
                f"Patient {word}", written.location, "informational", "information"),)), headers)
        return FhirResponse(written.status, written.resource, headers)

    # -- reads ----------------------------------------------------------------------------

    async def read(self, record_id: str, version: str | None = None) -> FhirResponse:
        """GET /Patient/{id} and /Patient/{id}/_history/{vid} (only the current version is kept)."""
        check_id(record_id)
        view = await asyncio.to_thread(self.search.record, record_id)
        if view is None:
            raise FhirError(404, f"there is no Patient/{record_id}", "Patient.id", code="not-found")
        record = view.record
        if version is not None and version != str(record.version):
            raise FhirError(404, f"version {version} of Patient/{record_id} is not kept; only the "
                            f"current version ({record.version}) can be read", "Patient.meta.versionId",
                            code="not-found")
        return FhirResponse(200, self.renderer.patient(record, view.replaces),
                            {"ETag": etag(record.version), "Last-Modified": http_date(record.updated_at)})

    async def find(self, call: Call, params: list[tuple[str, str]]) -> FhirResponse:
        """GET /Patient?identifier=system|value: a searchset Bundle."""
        unknown = sorted({name for name, _ in params if name not in ("identifier", "_format")})
        if unknown and call.strict:
            raise FhirError(400, f"unsupported search parameter(s): {', '.join(unknown)}",
                            f"http.{unknown[0]}", code="not-supported")
        wanted = [value for name, value in params if name == "identifier"]
        if not wanted:
            raise FhirError(400, "Patients are searched by identifier only: "
                            "GET [base]/Patient?identifier=system|value", "http.identifier",
                            code="not-supported")
        views = await asyncio.to_thread(self._matching, wanted)
        query = "&".join(f"identifier={v}" for v in wanted)
        return FhirResponse(200, {
            "resourceType": "Bundle", "type": "searchset", "total": len(views),
            "link": [{"relation": "self", "url": f"{call.base}/Patient?{query}"}],
            "entry": [{"fullUrl": f"{call.base}/Patient/{v.record.id}",
                       "resource": self.renderer.patient(v.record, v.replaces),
                       "search": {"mode": "match"}} for v in views]})

    def _matching(self, wanted: list[str]) -> list[RecordView]:
        """Records matching every ``identifier`` parameter (AND); commas within one mean OR."""
        result: dict[str, RecordView] | None = None
        for parameter in wanted:
            found: dict[str, RecordView] = {}
            for token in parameter.split(","):
                system, bar, value = token.rpartition("|")
                authority = (self.rules.canonical_authority(system.removeprefix(AUTHORITY_SYSTEM))
                             if system else "") if bar else None
                found.update((v.record.id, v) for v in self.search.records_with_identifier(authority, value))
            result = found if result is None else {k: v for k, v in result.items() if k in found}
        return list((result or {}).values())


def check_id(record_id: str, where: str = "Patient.id") -> None:
    """400 unless ``record_id`` is a FHIR id."""
    if not _ID.match(record_id):
        raise FhirError(400, "a FHIR id is 1-64 letters, digits, '-' or '.'", where, code="invalid")


def parse_if_match(value: str | None, where: str = "http.If-Match") -> int | None:
    """``W/"3"`` -> 3; None when absent; 400 when it is not a version ETag."""
    if value is None:
        return None
    match = _ETAG.match(value.strip())
    if match is None:
        raise FhirError(400, 'If-Match must be a version ETag such as W/"3"', where, code="invalid")
    return int(match.group(2))
