"""Request bodies to JSON objects, with the decisions FHIR leaves to the server written down.

- A UTF-8 byte-order mark is accepted and dropped: RFC 8259 lets a parser ignore it, and
  common tools (Windows editors, .NET serialisers) write one.
- Anything that is not UTF-8 is refused (FHIR JSON is UTF-8): a UTF-16/32 BOM names itself.
- Duplicate keys in one object are refused: ``json.loads`` would silently keep the last
  one, and a second ``birthDate`` that silently wins is how wrong data gets into an MPI.
  Every duplicated key is reported, one OperationOutcome issue each (at most 100).
- ``NaN`` and ``Infinity`` are refused: they are not JSON.
- Nesting deeper than ``MAX_DEPTH`` levels is refused (400): no FHIR resource comes near it,
  and everything after the parser (duplicate-key paths, fhir.resources, our checks) may walk
  the tree recursively. Deeper than the interpreter's recursion limit, ``json.loads`` itself
  raises ``RecursionError``: that is the same refusal, not a server error.
- More than ``MAX_ARRAY_ITEMS`` items in one array, or more than ``MAX_CONTAINERS`` objects
  and arrays in all, is refused (413, too-costly) before fhir.resources sees it: within the
  1 MiB body limit, 60,000 names made one request cost seconds of CPU and 60 MB of memory in
  validation, and 20,000 identifiers as many index rows, and peaks like these, spread over
  threads, left the process's memory high for good (glibc keeps freed memory per thread).
"""

from __future__ import annotations

import json
import re
from typing import Any

from inbound.fhir.errors import FhirError, Issue

__all__ = ["MAX_ARRAY_ITEMS", "MAX_CONTAINERS", "MAX_DEPTH", "JsonObject", "read_json"]

#: Arrays and objects inside one another, at most (a FHIR Patient needs about a dozen).
MAX_DEPTH = 64
#: Items of one array (a Bundle's entries included), at most.
MAX_ARRAY_ITEMS = 1000
#: Objects and arrays in one body, at most (a Patient has 20 to 400: a Bundle of 25 to 500 fits).
MAX_CONTAINERS = 10_000
_UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = {b"\xff\xfe": "UTF-16LE", b"\xfe\xff": "UTF-16BE"}
_DUPLICATE = "\x00portalbridge-duplicate-key"  # marks an object that had repeated keys
_MAX_DUPLICATES = 100  # issues reported; a body could repeat keys by the thousand
#: ``null`` as a value: after ``[``, ``,`` or ``:`` and before ``,``, ``]`` or ``}``.
_NULL_VALUE = re.compile(r"[\[,:]\s*null\s*[,\]}]")


class JsonObject(dict[str, Any]):
    """A body's top-level object; knows whether its text may hold a ``null`` value, so checks
    can skip walking the tree for the (many) bodies that hold none."""

    __slots__ = ("may_hold_null",)

    def __init__(self, data: dict[str, Any], may_hold_null: bool) -> None:
        super().__init__(data)
        self.may_hold_null = may_hold_null


def read_json(body: bytes, root: str) -> JsonObject:
    """The JSON object in ``body``; ``root`` names it in error expressions (``Patient``)."""
    text = _decode(body, root)
    duplicates = False

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicates
        obj = dict(pairs)
        if len(obj) != len(pairs):
            obj[_DUPLICATE] = _repeated(pairs)
            duplicates = True
        return obj

    try:
        data = json.loads(text, object_pairs_hook=pairs_hook, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise FhirError(400, f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, "
                        f"column {exc.colno})", root, code="structure") from None
    except ValueError as exc:
        raise FhirError(400, f"the body is not valid JSON: {exc}", root, code="structure") from None
    except RecursionError:
        raise _too_deep(root) from None
    _check_shape(data, text, root)
    if not isinstance(data, dict):
        raise FhirError(400, "the body must be a JSON object (a FHIR resource)", root, code="structure")
    if duplicates:
        raise _duplicate_keys(data, root)
    return JsonObject(data, "null" in text and _NULL_VALUE.search(text) is not None)


def _too_deep(root: str) -> FhirError:
    return FhirError(400, f"the body nests arrays and objects deeper than {MAX_DEPTH} levels",
                     root, code="structure")


def _check_shape(data: Any, text: str, root: str) -> None:
    """Refuse trees too deep, arrays too long and too many containers; walked without recursion."""
    brackets = text.count("[") + text.count("{")
    if brackets <= MAX_DEPTH and text.count(",") < MAX_ARRAY_ITEMS:
        return  # too small to break any limit (the usual case: no walk at all)
    containers = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        containers += 1
        if depth > MAX_DEPTH:
            raise _too_deep(root)
        if len(node) > MAX_ARRAY_ITEMS:
            raise _too_costly(f"an array or object holds {len(node)} items; at most "
                              f"{MAX_ARRAY_ITEMS} are accepted", root)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    if containers > MAX_CONTAINERS:
        raise _too_costly(f"the body holds {containers} objects and arrays; at most "
                          f"{MAX_CONTAINERS} are accepted", root)


def _too_costly(reason: str, root: str) -> FhirError:
    return FhirError(413, reason, root, code="too-costly")


def _decode(body: bytes, root: str) -> str:
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM):]
    for bom, name in _OTHER_BOMS.items():
        if body.startswith(bom):
            raise FhirError(400, f"the body is {name}; FHIR JSON must be UTF-8", root, code="structure")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FhirError(400, f"the body is not UTF-8 (invalid byte at offset {exc.start})", root,
                        code="structure") from None


def _repeated(pairs: list[tuple[str, Any]]) -> dict[str, int]:
    """Each key written more than once in one object, with how many times."""
    counts: dict[str, int] = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    return {key: count for key, count in counts.items() if count > 1}


def _duplicate_keys(data: dict[str, Any], root: str) -> FhirError:
    # The keys are the sender's own text: log lines name the resource only (``logged``).
    issues = [Issue(f"duplicate JSON key '{path.rsplit('.', 1)[-1]}' ({count} times): a key may "
                    "appear only once in an object", path, "structure", logged=root)
              for path, count in _duplicate_paths(data, root)]
    shown = issues[:_MAX_DUPLICATES]
    if len(issues) > len(shown):
        shown.append(Issue(f"{len(issues) - len(shown)} more duplicate keys are not listed", root,
                           "structure"))
    return FhirError(400, shown[0].diagnostics, shown[0].expression, code="structure",
                     issues=tuple(shown))


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _duplicate_paths(data: Any, root: str) -> list[tuple[str, int]]:
    """Where each repeated key sits, as element paths: an object's own before those inside
    it, members in the order written; walked without recursion."""
    found: list[tuple[str, int]] = []
    pending: list[tuple[str, Any]] = [(root, data)]
    while pending:
        path, node = pending.pop()
        if isinstance(node, dict):
            found += [(f"{path}.{key}", count) for key, count in node.get(_DUPLICATE, {}).items()]
            pending.extend((f"{path}.{key}", value) for key, value in reversed(node.items())
                           if key != _DUPLICATE)
        elif isinstance(node, list):
            pending.extend((f"{path}[{index}]", item) for index, item in reversed(list(enumerate(node))))
    return found
