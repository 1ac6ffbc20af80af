"""Which facility a FHIR write comes from, and so which tier its demographics rank at.

1. An authenticated client (routing.yaml ``fhir.clients``) writes for the facility it is
   bound to. If the resource's ``managingOrganization`` names another facility routing.yaml
   knows, the write is refused with 403: a client must not place records under a facility
   (and a tier) it was not given. An organization routing.yaml does not know is only
   information and does not stop the write.
2. Without a client (only possible with ``fhir.allow_anonymous``, for demos), the resource
   names its facility:
   ``managingOrganization`` first, then the ``assigner`` of its identifiers, in order.
   An organization is matched by its reference id (``Organization/NORTH``), its identifier
   (value or ``system|value``), its display, or for a contained organization (``#id``) by
   its identifiers and name, each against facility codes and aliases.
3. Nothing known: 422, naming what was looked at.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.rules import Facility, FhirClient, RoutingRules
from inbound.fhir.errors import FhirError

__all__ = ["organization_names", "sending_facility"]


def sending_facility(data: dict[str, Any], rules: RoutingRules, client: FhirClient | None,
                     path: str = "Patient") -> tuple[Facility, str]:
    """The facility, and a sentence saying why (for ``route explain``)."""
    named = _named_facility(data, rules, path)
    if client is not None:
        own = rules.facility(client.facility)
        if own is None:  # pragma: no cover - routing.yaml validation forbids it
            raise FhirError(500, f"client {client.name} names an unknown facility", "http.Authorization")
        if named is not None and named[0].code != own.code and named[1].endswith("managingOrganization"):
            raise FhirError(403, f"the client is bound to facility {own.code} but "
                            f"managingOrganization names facility {named[0].code}", named[1],
                            code="forbidden")
        return own, f"authenticated client '{client.name}' writes for facility {own.code} (tier {own.tier})"
    if named is not None:
        facility, where = named
        return facility, f"{where} names facility {facility.code} (tier {facility.tier})"
    tried = sorted({n for _, n in _candidates(data, path)})
    raise FhirError(422, "the resource names no facility routing.yaml knows ("
                    + (", ".join(f"'{t}'" for t in tried[:6]) or "no managingOrganization and no "
                       "identifier assigner")
                    + "); set managingOrganization to a facility code or alias, or authenticate "
                      "as a client bound to a facility", f"{path}.managingOrganization",
                    code="business-rule")


def _named_facility(data: dict[str, Any], rules: RoutingRules,
                    path: str) -> tuple[Facility, str] | None:
    for where, name in _candidates(data, path):
        facility = rules.facility(name)
        if facility is not None:
            return facility, where
    return None


def _candidates(data: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
    contained = {c.get("id"): c for c in data.get("contained") or ()
                 if isinstance(c, dict) and c.get("resourceType") == "Organization"}
    organization = data.get("managingOrganization")
    for name in organization_names(organization, contained):
        yield f"{path}.managingOrganization", name
    for number, ident in enumerate(data.get("identifier") or ()):
        assigner = ident.get("assigner") if isinstance(ident, dict) else None
        for name in organization_names(assigner, contained):
            yield f"{path}.identifier[{number}].assigner", name


def organization_names(reference: Any, contained: dict[Any, dict[str, Any]]) -> list[str]:
    """Every name an organization Reference gives, most specific first."""
    if not isinstance(reference, dict):
        return []
    names: list[str] = []
    target = reference.get("reference")
    if isinstance(target, str) and target:
        if target.startswith("#"):
            names += _contained_names(contained.get(target[1:]))
        else:
            names += [target.rstrip("/").rsplit("/", 1)[-1], target]
    ident = reference.get("identifier")
    if isinstance(ident, dict) and ident.get("value"):
        names += [ident["value"], f"{ident.get('system', '')}|{ident['value']}"]
    if reference.get("display"):
        names.append(reference["display"])
    return [n.strip() for n in names if isinstance(n, str) and n.strip()]


def _contained_names(organization: dict[str, Any] | None) -> list[str]:
    if organization is None:
        return []
    names: list[str] = []
    for ident in organization.get("identifier") or ():
        if isinstance(ident, dict) and ident.get("value"):
            names += [ident["value"], f"{ident.get('system', '')}|{ident['value']}"]
    names += [organization.get("name") or "", *(organization.get("alias") or ())]
    return names
