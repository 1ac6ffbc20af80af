"""routing.yaml, the interface analysts' file, read into frozen validated models.

Every problem is reported with its key path (``routes[3].action: unknown action 'upsrt'``);
an unknown key is an error, never ignored, because a misspelt key silently doing nothing is
the classic way an interface goes wrong in production.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.domain.durations import parse_duration
from engine.errors import ConfigurationError
from engine.limits import SENDER_CHARS
from engine.membership_rules import EnrollRule, MembershipRules
from engine.notification_rules import NotificationRules
from mpi.limits import AUTHORITY_CHARS, FACILITY_CHARS

__all__ = [
    "CREDENTIAL_EVENT_TYPES",
    "EVENT_TYPES",
    "MERGE_TRIGGERS",
    "Action",
    "Authority",
    "EventRules",
    "Facility",
    "FhirClient",
    "FhirRules",
    "Hl7Rules",
    "JournalRules",
    "Match",
    "NotificationRules",
    "Route",
    "RoutingRules",
    "Sender",
    "load_rules",
    "new_client_token",
    "parse_rules",
]

EventType = Literal["mpi.changed", "member.enrolled", "member.activated", "member.deactivated",
                    "member.reactivated", "member.password_changed", "member.locked",
                    "member.unlocked"]
#: Status-change event types (routing keys) published unless ``events.publish`` says otherwise.
EVENT_TYPES: tuple[EventType, ...] = ("mpi.changed", "member.enrolled", "member.activated",
                                      "member.deactivated", "member.reactivated")
#: Credential events: known, but published only when ``events.publish`` names them.
CREDENTIAL_EVENT_TYPES: tuple[EventType, ...] = ("member.password_changed", "member.locked",
                                                 "member.unlocked")


#: ADT triggers that merge patient records (HL7 v2 chapter 3): a route must apply them with
#: ``merge_patients`` or refuse them, never acknowledge them while applying nothing.
MERGE_TRIGGERS = frozenset({"A18", "A30", "A34", "A35", "A36", "A39", "A40"})


class Action(StrEnum):
    """What a route turns a message into."""

    UPSERT_PATIENT = "upsert_patient"
    MERGE_PATIENTS = "merge_patients"
    CHANGE_IDENTIFIER = "change_identifier"
    IGNORE = "ignore"  # acknowledged with AA, nothing applied
    REJECT = "reject"  # acknowledged with AR and the route's reason


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


Codes = Annotated[tuple[str, ...], Field(min_length=1)]


def _as_codes(value: Any) -> Any:
    """Accept a single code or a list of codes; ``"*"`` means any."""
    return (value,) if isinstance(value, str) else value


class Facility(_Strict):
    """A facility that sends patient data, and how much its demographics are trusted."""

    code: Annotated[str, Field(min_length=1, max_length=FACILITY_CHARS)]
    name: str = ""
    tier: Annotated[int, Field(ge=0)]
    # used when an identifier names no authority
    assigning_authority: Annotated[str, Field(max_length=AUTHORITY_CHARS)] = ""
    aliases: tuple[str, ...] = ()  # other MSH-4 values or FHIR identifiers for this facility
    #: Authorities whose identifiers may key this facility's records, most preferred first,
    #: after its own assigning authority (see ``mpi.keys``).
    authority_preference: tuple[str, ...] = ()

    @property
    def default_authority(self) -> str:
        return self.assigning_authority or self.code


class Sender(_Strict):
    """An accepted sender: MSH-3 sending application at a facility (``*`` for any).

    ``accept_without_msh4``: MSH-4 is optional in HL7 v2; a message from this application
    with an empty MSH-4 is then taken as coming from ``facility``.
    """

    application: str = "*"
    facility: str
    accept_without_msh4: bool = False

    @model_validator(mode="after")
    def _named_application(self) -> Sender:
        if self.accept_without_msh4 and self.application in ("", "*"):
            raise ValueError("accept_without_msh4 needs a named application (MSH-3), not '*'")
        return self


class Match(_Strict):
    """Which messages a route applies to; every given criterion must hold."""

    message_type: Codes = ("*",)
    trigger: Codes = ("*",)
    facility: Codes = ("*",)
    version: Codes = ("*",)

    _codes = field_validator("message_type", "trigger", "facility", "version", mode="before")(_as_codes)

    def accepts(self, message_type: str, trigger: str, facility: str, version: str) -> bool:
        return all(_matches(allowed, value) for allowed, value in (
            (self.message_type, message_type), (self.trigger, trigger),
            (self.facility, facility), (self.version, version)))


def _matches(allowed: tuple[str, ...], value: str) -> bool:
    return "*" in allowed or value.upper() in (a.upper() for a in allowed)


class Route(_Strict):
    """One rule: the first route whose ``match`` accepts a message decides its action."""

    name: str = ""
    match: Match = Match()
    action: Action
    reason: str = ""  # told to the sender on ``reject`` (and ``ignore``)
    strict: bool = False  # validate the message structure with hl7apy before applying
    #: A segment name found as a whole field (``|||PV1|1|O``: a lost segment separator):
    #: ``refuse`` answers AR at that field; ``split`` cuts the segments apart and warns.
    glued_segments: Literal["refuse", "split"] = "refuse"
    enroll: EnrollRule | None = None  # automated enrollment of the patients it stores

    @model_validator(mode="after")
    def _reject_needs_reason(self) -> Route:
        if self.action is Action.REJECT and not self.reason:
            raise ValueError("a 'reject' route needs a 'reason' the sender will read")
        if self.enroll is not None and self.action is not Action.UPSERT_PATIENT:
            raise ValueError("'enroll' is only for 'upsert_patient' routes")
        return self


class Authority(_Strict):
    """An assigning authority and the other names it goes by.

    HL7 v2 names an authority by namespace id (CX-4.1) or universal id (CX-4.2, often an
    OID); FHIR by an identifier ``system`` URI. Listing them here makes all of them one
    authority, so the same MRN sent as HL7 and as FHIR finds the same patient.
    """

    code: Annotated[str, Field(min_length=1, max_length=AUTHORITY_CHARS)]
    aliases: tuple[str, ...] = ()


class FhirClient(_Strict):
    """A FHIR client allowed to write, and the facility its writes come from.

    Only the SHA-256 of its bearer token is stored (tokens are long random strings, so a
    fast hash is enough; they are compared in constant time).
    """

    # Its writes are stored under the sender "fhir:<name>".
    name: Annotated[str, Field(min_length=1, max_length=SENDER_CHARS - len("fhir:"))]
    token_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    facility: str


def new_client_token(name: str, facility: str) -> tuple[str, str]:
    """A new random bearer token, and the ``fhir.clients`` entry (YAML flow style) that admits
    it: only the token's SHA-256 goes into routing.yaml."""
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
    entry = {"name": name, "facility": facility, "token_sha256": digest}
    line = yaml.safe_dump([entry], default_flow_style=None, sort_keys=False, width=1000).strip()
    return token, line


class FhirRules(_Strict):
    """The FHIR API. Every request but the CapabilityStatement needs a client's token, unless
    ``allow_anonymous`` (demos only: the resource then names its own facility)."""

    clients: tuple[FhirClient, ...] = ()
    allow_anonymous: bool = False

    @field_validator("clients", mode="before")
    @classmethod
    def _no_clients_yet(cls, value: Any) -> Any:
        return () if value is None else value  # `clients:` with every line commented out
    default_version: Literal["R4", "R4B", "R5"] = "R4"
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    enroll: EnrollRule | None = None  # automated enrollment of patients created over FHIR


class EventRules(_Strict):
    """Which status-change events are published (the specification's "Selection of Notifications")."""

    publish: tuple[EventType, ...] = EVENT_TYPES
    source: str = "urn:portalbridge"  # the CloudEvents ``source`` attribute
    #: ``mpi.changed`` for members only (the specification's "member's MPI record"), or for
    #: every patient in the index.
    mpi_changed_for: Literal["members", "all_patients"] = "members"


class Hl7Rules(_Strict):
    """How the MLLP listener reads bytes."""

    fallback_encoding: str | None = "cp1252"  # when bytes are not UTF-8 and MSH-18 is empty
    max_frame_bytes: Annotated[int, Field(ge=1024)] = 4 * 1024 * 1024
    receiving_application: str = "PORTALBRIDGE"
    receiving_facility: str = "PORTALBRIDGE"


class JournalRules(_Strict):
    """The message journal: every inbound message, its answer and its effects (engine.journal).

    ``payloads`` says how the message and its answer are kept: ``encrypt`` (AES-GCM under
    ``PORTALBRIDGE_SECRET_KEY``), ``keep`` (as received) or ``omit`` (metadata and effects
    only; such a message cannot be reprocessed). Rows older than ``retention`` are deleted.
    """

    enabled: bool = True
    retention: str = "30d"
    payloads: Literal["encrypt", "keep", "omit"] = "encrypt"

    @field_validator("retention")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value) <= timedelta(0):
            raise ValueError("the retention must be longer than nothing")
        return value

    @property
    def retention_period(self) -> timedelta:
        return parse_duration(self.retention)

    @property
    def encrypts(self) -> bool:
        """Whether this journal needs the secret key."""
        return self.enabled and self.payloads == "encrypt"


class RoutingRules(_Strict):
    """The whole routing.yaml."""

    version: Literal[1] = 1
    facilities: Annotated[tuple[Facility, ...], Field(min_length=1)]
    senders: tuple[Sender, ...] = ()
    routes: Annotated[tuple[Route, ...], Field(min_length=1)]
    authorities: tuple[Authority, ...] = ()
    events: EventRules = EventRules()
    hl7: Hl7Rules = Hl7Rules()
    fhir: FhirRules = FhirRules()
    journal: JournalRules = JournalRules()
    membership: MembershipRules = MembershipRules()
    notifications: NotificationRules = NotificationRules()

    @model_validator(mode="after")
    def _cross_references(self) -> RoutingRules:
        problems = _facility_problems(self.facilities)
        known = {f.code for f in self.facilities}
        problems += [f"senders[{i}].facility: unknown facility '{s.facility}'"
                     for i, s in enumerate(self.senders) if s.facility not in known]
        problems += [f"fhir.clients[{i}].facility: unknown facility '{c.facility}'"
                     for i, c in enumerate(self.fhir.clients) if c.facility not in known]
        problems += _authority_problems(self.authorities)
        problems += _sender_problems(self.senders)
        for i, route in enumerate(self.routes):
            problems += [f"routes[{i}].match.facility: unknown facility '{code}'"
                         for code in route.match.facility if code != "*" and code not in known]
            problems += _merge_route_problems(i, route)
        if self.fhir.enroll is not None:
            problems += [f"fhir.enroll.facilities: unknown facility '{code}'"
                         for code in self.fhir.enroll.facilities if code != "*" and code not in known]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def facility(self, code: str) -> Facility | None:
        """The facility with this code, or whose aliases include it."""
        return self._facility_index().get(code.upper())

    def tier_of(self, code: str) -> int:
        """Tier rank of a facility; an unknown facility ranks last."""
        facility = self.facility(code)
        return facility.tier if facility is not None else 1_000_000

    def canonical_authority(self, *names: str) -> str:
        """The authority code for the first of ``names`` routing.yaml knows, else the first
        name given (an ``urn:oid:`` prefix dropped, so OIDs compare equal across formats)."""
        index = self._authority_index()
        for name in names:
            code = index.get(name.upper()) or index.get(_strip_oid(name).upper())
            if code:
                return code
        return next((_strip_oid(n) for n in names if n), "")

    def key_authorities(self, facility: Facility) -> tuple[str, ...]:
        """The authorities a facility's record keys are chosen from, most preferred first:
        its own assigning authority, then its ``authority_preference``, as authority codes."""
        names = (facility.default_authority, *facility.authority_preference)
        found = [self.canonical_authority(name) for name in names]
        return tuple(dict.fromkeys((facility.default_authority, *found)))

    def _authority_index(self) -> Mapping[str, str]:
        index: dict[str, str] | None = self.__dict__.get("_authority_cache")
        if index is None:
            index = {}
            for authority in self.authorities:
                for name in (authority.code, *authority.aliases):
                    index.setdefault(_strip_oid(name).upper(), authority.code)
                    index.setdefault(name.upper(), authority.code)
            object.__setattr__(self, "_authority_cache", index)
        return index

    def _facility_index(self) -> Mapping[str, Facility]:
        index: dict[str, Facility] | None = self.__dict__.get("_index_cache")
        if index is None:
            index = {}
            for facility in self.facilities:
                for name in (facility.code, *facility.aliases):
                    index.setdefault(name.upper(), facility)
            object.__setattr__(self, "_index_cache", index)  # frozen model: cache only
        return index


def _strip_oid(name: str) -> str:
    return name[8:] if name[:8].lower() == "urn:oid:" else name


def _authority_problems(authorities: tuple[Authority, ...]) -> list[str]:
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, authority in enumerate(authorities):
        for name in (authority.code, *authority.aliases):
            first = seen.setdefault(_strip_oid(name).upper(), i)
            if first != i:
                problems.append(f"authorities[{i}]: '{name}' is already used by authorities[{first}]")
    return problems


def _sender_problems(senders: tuple[Sender, ...]) -> list[str]:
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, sender in enumerate(senders):
        if sender.accept_without_msh4:
            first = seen.setdefault(sender.application.upper(), i)
            if first != i:
                problems.append(f"senders[{i}].accept_without_msh4: application "
                                f"'{sender.application}' already stands for a facility in senders[{first}]")
    return problems


def _merge_route_problems(index: int, route: Route) -> list[str]:
    """A route naming a merge trigger must merge it or refuse it, never apply nothing."""
    if route.action in (Action.MERGE_PATIENTS, Action.REJECT):
        return []
    if not any(t in ("*", "ADT") for t in (m.upper() for m in route.match.message_type)):
        return []
    named = sorted(t.upper() for t in route.match.trigger if t.upper() in MERGE_TRIGGERS)
    return [f"routes[{index}].action: ADT^{trigger} merges patient records: route it to "
            f"merge_patients (or reject it), not {route.action.value}" for trigger in named]


def _facility_problems(facilities: tuple[Facility, ...]) -> list[str]:
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, facility in enumerate(facilities):
        for name in (facility.code, *facility.aliases):
            first = seen.setdefault(name.upper(), i)
            if first != i:
                problems.append(f"facilities[{i}]: '{name}' is already used by facilities[{first}]")
    return problems


# -- loading ----------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise ConfigurationError(f"line {line}: duplicate key '{key}'")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_rules(path: Path) -> RoutingRules:
    """Read and validate a routing file; raise ``ConfigurationError`` listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the routing file ({exc.strerror})") from exc
    rules = parse_rules(text, source=str(path))
    # A relative templates folder is where the analyst sees it: beside the routing file.
    notifications = rules.notifications.resolved_against(path.parent)
    return rules if notifications is rules.notifications else \
        rules.model_copy(update={"notifications": notifications})


def parse_rules(text: str, source: str = "routing.yaml") -> RoutingRules:
    """Validate routing YAML text; raise ``ConfigurationError`` listing every problem."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{source}: the file must hold a mapping of settings")
    try:
        return RoutingRules.model_validate(data)
    except ValidationError as exc:
        problems = tuple(line for error in exc.errors() for line in _describe(error).split("\n"))
        raise ConfigurationError(f"{source}: {len(problems)} problem(s)", problems) from exc


def _describe(error: Mapping[str, Any]) -> str:
    path = _key_path(error["loc"])
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return f"{path}: unknown key"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind in {"enum", "literal_error"}:
        allowed = error.get("ctx", {}).get("expected", "")
        name = path.rsplit(".", 1)[-1].split("[")[0]
        return f"{path}: unknown {name.rstrip('s')} {value!r} (expected {allowed})"
    message = str(error["msg"]).removeprefix("Value error, ")
    if "\n" in message or message.startswith(("senders[", "routes[", "facilities[", "authorities[",
                                               "notifications.")):
        return message  # cross-reference problems carry their own paths
    return f"{path}: {message}"


def _key_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not str(part).startswith(("function-", "tagged-union")):
            path += f".{part}" if path else str(part)
    return path or "(top level)"
