"""What fhir.resources does not check, for the Patient elements portalbridge reads.

fhir.resources validates structure and primitive formats but not code bindings, invariants
or the JSON rule for ``null`` in primitive arrays. Where portalbridge maps an element it must
understand its value, so for those elements the specification's rules are applied here:

- required code bindings (gender, name/telecom/address/identifier use, link type, ...);
- invariant cpt-2: a ContactPoint with a value needs a system (we do not guess "phone");
- ``null`` in a primitive array is only a placeholder for an ``_element`` at the same
  position that carries an id or extensions; a bare ``null`` is refused, and so is ``null``
  as the value of an element (FHIR JSON leaves absent elements out);
- modifier extensions and ``implicitRules`` change the meaning of a resource: a system that
  does not understand them must not process it as if they were absent (422, not-supported);
- strings hold no control characters but tab, CR and LF (FHIR's rule for ``string``, which
  fhir.resources' pattern lets through; a NUL cannot even be stored) and no lone surrogate
  (JSON can write ``\ud800``), anywhere in the resource (400);
- identifiers fit the index (``check_identifier``: value, system as an authority and type
  code within the store's column limits, else 422 too-long).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from inbound.fhir.errors import FhirError, Issue
from mpi.limits import AUTHORITY_CHARS, IDENTIFIER_TYPE_CHARS, IDENTIFIER_VALUE_CHARS, value_problem
from mpi.model import Identifier

__all__ = ["check_identifier", "check_patient"]

#: FHIR strings: no character below U+0020 but tab, LF and CR; and no lone surrogate.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")

_BINDINGS: dict[str, dict[str, frozenset[str]]] = {
    "": {"gender": frozenset({"male", "female", "other", "unknown"})},
    "name": {"use": frozenset({"usual", "official", "temp", "nickname", "anonymous", "old",
                               "maiden"})},
    "telecom": {"system": frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"}),
                "use": frozenset({"home", "work", "temp", "old", "mobile"})},
    "address": {"use": frozenset({"home", "work", "temp", "old", "billing"}),
                "type": frozenset({"postal", "physical", "both"})},
    "identifier": {"use": frozenset({"usual", "official", "temp", "secondary", "old"})},
    "link": {"type": frozenset({"replaced-by", "replaces", "refer", "seealso"})},
}
_MAX_ISSUES = 20


def check_patient(data: dict[str, Any], path: str = "Patient") -> None:
    """Raise ``FhirError`` (400, or 422 for modifiers) listing every problem found."""
    issues = [*_text_issues(data, path), *_binding_issues(data, path),
              *_telecom_issues(data, path), *_null_issues(data, path)][:_MAX_ISSUES]
    if issues:
        raise FhirError(400, issues[0].diagnostics, issues[0].expression, code=issues[0].code,
                        issues=tuple(issues))
    modifiers = list(_modifier_issues(data, path))
    if modifiers:
        raise FhirError(422, modifiers[0].diagnostics, modifiers[0].expression,
                        code="not-supported", issues=tuple(modifiers))


def _binding_issues(data: dict[str, Any], path: str) -> Iterator[Issue]:
    for element, codes in _BINDINGS.items():
        items = [(path, data)] if not element else [
            (f"{path}.{element}[{n}]", item) for n, item in enumerate(data.get(element) or ())
            if isinstance(item, dict)]
        for where, item in items:
            for name, allowed in codes.items():
                value = item.get(name)
                if value is not None and value not in allowed:
                    yield Issue(f"'{value}' is not a valid {name} code here (expected one of: "
                                f"{', '.join(sorted(allowed))})", f"{where}.{name}", "code-invalid")


def _telecom_issues(data: dict[str, Any], path: str) -> Iterator[Issue]:
    for number, telecom in enumerate(data.get("telecom") or ()):
        if isinstance(telecom, dict) and telecom.get("value") and not telecom.get("system"):
            yield Issue("a contact point with a value needs a system (invariant cpt-2): say "
                        "whether it is a phone, e-mail, ...", f"{path}.telecom[{number}].system",
                        "invariant")


def _null_issues(node: Any, path: str) -> Iterator[Issue]:
    """Bare nulls in primitive arrays, anywhere in the resource."""
    # Most bodies hold no null at all: skip the walk when the text said so, or the tree does.
    if getattr(node, "may_hold_null", True) and _holds_null(node):
        yield from _null_walk(node, path)


def _holds_null(node: Any) -> bool:
    """Whether ``node`` contains a null anywhere (placeholders included)."""
    pending = [node]
    while pending:
        current = pending.pop()
        for value in current.values() if isinstance(current, dict) else current:
            if value is None:
                return True
            if isinstance(value, dict | list):
                pending.append(value)
    return False


def _null_walk(node: Any, path: str) -> Iterator[Issue]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _null_walk(item, f"{path}[{index}]")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if value is None:
            yield Issue(f"'{key}' is null; FHIR JSON leaves an absent element out instead",
                        f"{path}.{key}", "structure")
        if isinstance(value, list) and not key.startswith("_") and None in value:
            companions = node.get(f"_{key}")
            companions = companions if isinstance(companions, list) else []
            for index, item in enumerate(value):
                if item is None and (index >= len(companions) or companions[index] is None):
                    yield Issue("null in an array is only allowed as a placeholder for "
                                f"'_{key}[{index}]' (an id or extensions); this one has none",
                                f"{path}.{key}[{index}]", "structure")
        if isinstance(value, dict | list):
            yield from _null_walk(value, f"{path}.{key}")


def _modifier_issues(data: dict[str, Any], path: str) -> Iterator[Issue]:
    if data.get("implicitRules"):
        yield Issue("implicitRules may change the meaning of the resource and portalbridge does "
                    "not know these rules", f"{path}.implicitRules", "not-supported")
    places = [(path, data)] + [(f"{path}.link[{n}]", link)
                               for n, link in enumerate(data.get("link") or ())
                               if isinstance(link, dict)]
    for where, element in places:
        for number, extension in enumerate(element.get("modifierExtension") or ()):
            url = extension.get("url", "") if isinstance(extension, dict) else ""
            yield Issue(f"modifier extension '{url}' is not understood by portalbridge; a "
                        "resource with a modifier extension it does not understand is refused",
                        f"{where}.modifierExtension[{number}]", "not-supported")


def check_identifier(identifier: Identifier, where: str) -> None:
    """422 (too-long) unless the identifier read from ``where`` (``Patient.identifier[0]``)
    fits the index: value, authority (from ``system``) and type code."""
    for problem, element in ((value_problem(identifier.value, IDENTIFIER_VALUE_CHARS), "value"),
                             (value_problem(identifier.authority, AUTHORITY_CHARS), "system"),
                             (value_problem(identifier.type_code, IDENTIFIER_TYPE_CHARS), "type")):
        if problem is not None:
            raise FhirError(422, f"'{element}' {problem} (the patient index's limit)",
                            f"{where}.{element}", code="too-long")


def _text_issues(data: dict[str, Any], path: str) -> Iterator[Issue]:
    """Strings holding characters FHIR forbids, walked without recursion."""
    pending: list[tuple[str, Any]] = [(path, data)]
    while pending:
        where, node = pending.pop()
        if isinstance(node, str):
            found = _NOT_TEXT.search(node)
            if found is not None:
                yield Issue(f"the value holds character U+{ord(found.group()):04X} at position "
                            f"{found.start() + 1}; FHIR strings may not hold control characters "
                            "other than tab, CR and LF, nor lone surrogates", where, "value")
        elif isinstance(node, dict):
            pending.extend((f"{where}.{key}", value) for key, value in reversed(node.items()))
        elif isinstance(node, list):
            pending.extend((f"{where}[{n}]", item) for n, item in reversed(list(enumerate(node))))
