"""Body bytes to a validated FHIR resource, read with fhir.resources in the right version.

Which FHIR version a body is read as, first rule that applies:

1. the ``fhirVersion`` parameter of the Content-Type (``application/fhir+json;
   fhirVersion=4.0``): 4.0 is R4, 4.3 is R4B, 5.0 is R5; any other value is a 415;
2. a version in ``meta.profile`` (``...|4.0.1``, ``.../R5/...``): the resource says so;
3. ``fhir.default_version`` in routing.yaml (R4 unless set).

fhir.resources 8 has R5 at the top level and R4B under ``fhir.resources.R4B``; there is no
separate R4 module, so R4 input is read with the R4B models (Patient and Bundle did not
change between R4 and R4B in any element portalbridge reads).

The model proves the JSON is valid FHIR; translation then reads the same validated JSON,
because fhir.resources turns ``dateTime`` values into Python datetimes and the MPI keeps
dates with the precision they were sent with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from fhir.resources import get_fhir_model_class as r5_model_class
from fhir.resources.bundle import Bundle as R5Bundle
from fhir.resources.patient import Patient as R5Patient
from fhir.resources.R4B import get_fhir_model_class as r4b_model_class
from fhir.resources.R4B.bundle import Bundle as R4BBundle
from fhir.resources.R4B.patient import Patient as R4BPatient
from pydantic import ValidationError

from inbound.fhir.checks import check_patient
from inbound.fhir.errors import FhirError, Issue

__all__ = ["SUPPORTED_VERSIONS", "FhirVersion", "Parsed", "choose_version", "validate_bundle",
           "validate_patient", "version_of_media_type"]

FhirVersion = Literal["R4", "R4B", "R5"]
#: FHIR version names and the fhirVersion values CapabilityStatements and media types use.
SUPPORTED_VERSIONS: dict[FhirVersion, str] = {"R4": "4.0.1", "R4B": "4.3.0", "R5": "5.0.0"}

_MEDIA_VERSIONS: dict[str, FhirVersion] = {"4.0": "R4", "4.3": "R4B", "5.0": "R5"}
_PROFILE_VERSION = re.compile(r"\|(\d+\.\d+)(?:\.\d+)?$")
_PROFILE_PATH = re.compile(r"/(R4B|R4|R5)/")
_PATH_VERSIONS: dict[str, FhirVersion] = {"R4": "R4", "R4B": "R4B", "R5": "R5"}
_MODELS: dict[tuple[FhirVersion, str], Any] = {
    ("R4", "Patient"): R4BPatient, ("R4B", "Patient"): R4BPatient, ("R5", "Patient"): R5Patient,
    ("R4", "Bundle"): R4BBundle, ("R4B", "Bundle"): R4BBundle, ("R5", "Bundle"): R5Bundle,
}
_MAX_ISSUES = 20
_MODEL_CLASS = {"R4": r4b_model_class, "R4B": r4b_model_class, "R5": r5_model_class}


@dataclass(frozen=True, slots=True)
class Parsed:
    """A validated resource: its JSON and the version it was read as."""

    data: dict[str, Any]
    version: FhirVersion

    @property
    def resource_type(self) -> str:
        return str(self.data.get("resourceType", ""))


def version_of_media_type(parameter: str | None) -> FhirVersion | None:
    """The version a Content-Type ``fhirVersion`` parameter names; 415 when unsupported."""
    if not parameter:
        return None
    major_minor = ".".join(parameter.strip().strip('"').split(".")[:2])
    version = _MEDIA_VERSIONS.get(major_minor)
    if version is None:
        raise FhirError(415, f"fhirVersion {parameter} is not supported (supported: 4.0 = R4, "
                        "4.3 = R4B, 5.0 = R5)", "http.Content-Type", code="not-supported")
    return version


def choose_version(declared: FhirVersion | None, data: dict[str, Any],
                   default: FhirVersion) -> FhirVersion:
    """The media-type version, else a ``meta.profile`` hint, else the configured default."""
    return declared or _profile_hint(data) or default


def _profile_hint(data: dict[str, Any]) -> FhirVersion | None:
    meta = data.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    for profile in profiles if isinstance(profiles, list) else ():
        if not isinstance(profile, str):
            continue
        found = _PROFILE_VERSION.search(profile)
        if found and found.group(1) in _MEDIA_VERSIONS:
            return _MEDIA_VERSIONS[found.group(1)]
        path = _PROFILE_PATH.search(profile)
        if path:
            return _PATH_VERSIONS[path.group(1)]
    return None


def validate_patient(data: dict[str, Any], version: FhirVersion, path: str = "Patient") -> Parsed:
    """A Patient that fhir.resources and our own checks accept, else ``FhirError``."""
    _expect_type(data, "Patient", path)
    _validate(_MODELS[(version, "Patient")], data, path, version)
    check_patient(data, path)
    return Parsed(data, version)


def validate_bundle(data: dict[str, Any], version: FhirVersion) -> Parsed:
    """The Bundle envelope, validated without its entries' resources.

    Each resource is validated on its own afterwards, so one bad entry of a batch fails
    alone and its errors point into that entry.
    """
    _expect_type(data, "Bundle", "Bundle")
    envelope = dict(data)
    entries = data.get("entry")
    if isinstance(entries, list):
        envelope["entry"] = [{k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict)
                             else e for e in entries]
    _validate(_MODELS[(version, "Bundle")], envelope, "Bundle", version)
    return Parsed(data, version)


def _expect_type(data: dict[str, Any], expected: str, path: str) -> None:
    found = data.get("resourceType")
    if found == expected:
        return
    where = path.rsplit(".", 1)[0] + ".resourceType" if "." in path else "resourceType"
    if found is None:
        raise FhirError(400, f"resourceType is missing (expected '{expected}')", where,
                        code="required")
    raise FhirError(400, f"resourceType is '{found}' but this interaction takes a {expected}",
                    where, code="invalid")


def _validate(model: Any, data: dict[str, Any], path: str, version: FhirVersion) -> None:
    _check_contained_types(data, path, version)
    try:
        model.model_validate(data)
    except ValidationError as exc:
        issues = tuple(_issue(error, path) for error in exc.errors()[:_MAX_ISSUES])
        raise FhirError(400, issues[0].diagnostics, issues[0].expression, code=issues[0].code,
                        issues=issues) from None
    except (TypeError, ValueError) as exc:  # a few fhir.resources validators raise directly
        raise FhirError(400, f"invalid {path}: {exc}", path, code="structure") from None
    except AttributeError:  # fhir_core calls string methods on a url before checking its type
        raise FhirError(400, f"invalid {path}: a value has the wrong JSON type (a number or true/"
                        "false where text belongs, as in photo.url)", path, code="structure") from None
    except LookupError as exc:  # fhir_core looks types up by name and lets a KeyError out
        raise FhirError(400, f"invalid {path}: unknown type {exc}", path, code="structure") from None


def _check_contained_types(data: dict[str, Any], path: str, version: FhirVersion) -> None:
    """A contained resource of a type FHIR does not have is a 400 naming it (fhir_core would
    raise a bare KeyError: found by fuzzing, a 500 before)."""
    contained = data.get("contained")
    for number, resource in enumerate(contained if isinstance(contained, list) else ()):
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(kind, str):
            continue  # missing or not a string: fhir.resources' own error names it
        try:
            _MODEL_CLASS[version](kind)
        except ValueError:
            raise FhirError(400, f"'{kind[:64]}' is not a FHIR resource type",
                            f"{path}.contained[{number}].resourceType", code="value") from None


def _issue(error: Any, path: str) -> Issue:
    loc = [part for part in error["loc"] if part != "root"]
    expression = path + "".join(f"[{p}]" if isinstance(p, int) else
                                f".{'resourceType' if p == 'resource_type' else p}" for p in loc)
    name = next((str(p) for p in reversed(loc) if not isinstance(p, int)), path)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = expression[:len(expression) - len(name) - 1] or path
        return Issue(f"unknown element '{name}' (not part of this resource in this FHIR "
                     "version; check the spelling)", expression, "structure",
                     logged=f"{parent}.(unknown element)")
    if kind == "missing":
        return Issue(f"required element '{name}' is missing", expression, "required")
    if kind == "string_pattern_mismatch" and error.get("input") == "":
        return Issue(f"'{name}' is an empty string; FHIR does not allow empty values (leave the "
                     "element out instead)", expression, "value")
    message = str(error["msg"]).removeprefix("Value error, ").split("\n")[0]
    return Issue(f"'{name}' is invalid: {message}", expression, "value")
