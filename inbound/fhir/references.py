"""``urn:uuid`` references between the entries of a transaction, bound to record ids.

A Patient POSTed in a transaction may be referenced by another entry (``Patient.link``)
through its ``urn:uuid`` fullUrl. The reference must become the id of the record the entry
ends up as, before the commands go to the core:

- a PUT entry is its url's id;
- a POST with ``ifNoneExist`` that matches one record is that record (FHIR: references to a
  matched conditional create point at the match); several matches are a 412;
- a POST whose record already exists with the same data (a resent transaction) is that
  record, so a resend succeeds unchanged instead of failing;
- any other POST gets a fresh id, and the core creates the record under it.

The core checks again when it applies the commands, so a record changed in between is
refused there, not silently linked.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from engine.commands import RecordLink, SavePatientResource
from inbound.fhir.errors import FhirError
from inbound.fhir.service import FhirApi

__all__ = ["Planned", "bind_references"]


@dataclass(frozen=True, slots=True)
class Planned:
    """One entry's command, with what binding needs to know about the entry."""

    index: int
    full_url: str
    method: str
    command: SavePatientResource


async def bind_references(api: FhirApi, planned: list[Planned],
                          referenced: set[str]) -> list[SavePatientResource]:
    """The commands with referenced entries' ids chosen and every link pointing at them."""
    ids: dict[str, str] = {}
    for item in planned:
        if item.full_url not in referenced:
            continue
        if item.method == "PUT" and item.command.record_id:
            ids[item.full_url] = item.command.record_id
        else:
            ids[item.full_url] = await asyncio.to_thread(_existing_or_new, api, item)
    return [_bound(item, ids) for item in planned]


def _existing_or_new(api: FhirApi, item: Planned) -> str:
    command = item.command
    if command.if_none_exist:
        matches: set[str] | None = None
        for identifier in command.if_none_exist:
            found = {v.record.id for v in api.search.records_with_identifier(
                identifier.authority, identifier.value) if v.record.is_active}
            matches = found if matches is None else matches & found
        if matches and len(matches) > 1:
            raise FhirError(412, f"the condition matches {len(matches)} patients",
                            f"Bundle.entry[{item.index}].request.ifNoneExist", code="conflict")
        if matches:
            return matches.pop()
    view = api.search.record_with_key(command.key)
    if view is not None and view.record.is_active and view.record.demographics == command.demographics:
        return view.record.id
    return api.ids.new_id()


def _bound(item: Planned, ids: dict[str, str]) -> SavePatientResource:
    command = item.command
    record_id = ids.get(item.full_url, command.record_id) if item.method == "POST" else command.record_id
    links = tuple(RecordLink(other_record_id=ids.get(link.other_record_id, link.other_record_id),
                             kind=link.kind) for link in command.links)
    return replace(command, record_id=record_id, links=links)
