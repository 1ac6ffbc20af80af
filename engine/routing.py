"""The router: which facility sent a message, whether it may, and which route takes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import UnroutableMessage
from engine.rules import Facility, Route, RoutingRules

__all__ = ["RouteDecision", "RouteRequest", "Router"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteRequest:
    """What routing looks at, whatever the input format."""

    sender_application: str
    sender_facility: tuple[str, ...]  # candidate codes, e.g. MSH-4.1 and MSH-4.2
    message_type: str
    trigger: str
    version: str = ""


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The route that matched, the sending facility, and why (for ``route explain``)."""

    route: Route
    facility: Facility
    explanation: tuple[str, ...]
    #: Maps authority names (namespace, OID, FHIR system) to routing.yaml's authority code.
    canonical_authority: Callable[..., str]
    #: The facility's authorities for choosing record keys, most preferred first.
    key_authorities: tuple[str, ...] = ()
    #: The route as an analyst finds it in routing.yaml: ``routes[3] (other ADT events)``.
    label: str = ""


class Router:
    """First matching route wins, in file order."""

    def __init__(self, rules: RoutingRules) -> None:
        self._rules = rules

    def route(self, request: RouteRequest) -> RouteDecision:
        facility, why_facility = self._facility(request)
        why_sender = self._accept_sender(request, facility)
        for index, route in enumerate(self._rules.routes):
            if route.match.accepts(request.message_type, request.trigger, facility.code,
                                   request.version):
                label = f"routes[{index}]" + (f" ({route.name})" if route.name else "")
                why_route = (f"{label} matched {request.message_type}^{request.trigger} "
                             f"-> {route.action.value}")
                return RouteDecision(route, facility, (why_facility, why_sender, why_route),
                                     self._rules.canonical_authority,
                                     self._rules.key_authorities(facility), label)
        raise self._no_route(request, facility)

    def _facility(self, request: RouteRequest) -> tuple[Facility, str]:
        for candidate in request.sender_facility:
            facility = self._rules.facility(candidate) if candidate else None
            if facility is not None:
                why = f"sending facility '{candidate}' is facility {facility.code} (tier {facility.tier})"
                return facility, why
        shown = next((c for c in request.sender_facility if c), "")
        if not shown:
            return self._facility_of_application(request)
        raise UnroutableMessage(
            f"sending facility '{shown}' is not a facility in routing.yaml", "MSH-4", code="103")

    def _facility_of_application(self, request: RouteRequest) -> tuple[Facility, str]:
        """MSH-4 is empty (legal in v2): the facility a sender entry says MSH-3 stands for."""
        app = request.sender_application
        for index, sender in enumerate(self._rules.senders):
            if sender.accept_without_msh4 and sender.application.upper() == app.upper():
                facility = self._rules.facility(sender.facility)
                if facility is not None:
                    return facility, (f"MSH-4 is empty: senders[{index}] takes application "
                                      f"'{app}' as facility {facility.code} (tier {facility.tier})")
        shown = app or "(empty MSH-3)"
        raise UnroutableMessage(
            f"MSH-4 (sending facility) is empty; to accept application '{shown}' without it, "
            f"add to routing.yaml senders: {{application: {shown}, facility: <code>, "
            "accept_without_msh4: true}", "MSH-4", code="101")

    def _accept_sender(self, request: RouteRequest, facility: Facility) -> str:
        senders = self._rules.senders
        if not senders:
            return "routing.yaml lists no senders: every known facility is accepted"
        app = request.sender_application.upper()
        for index, sender in enumerate(senders):
            if sender.facility == facility.code and sender.application.upper() in ("*", app):
                return f"sender accepted by senders[{index}]"
        raise UnroutableMessage(
            f"sending application '{request.sender_application}' at facility {facility.code} "
            "is not an accepted sender", "MSH-3", code="103")

    def _no_route(self, request: RouteRequest, facility: Facility) -> UnroutableMessage:
        known_type = any(request.message_type.upper() in (t.upper() for t in r.match.message_type)
                         for r in self._rules.routes)
        what = f"{request.message_type}^{request.trigger}" if request.trigger else request.message_type
        return UnroutableMessage(f"no route accepts {what} from facility {facility.code}",
                                 "MSH-9", code="201" if known_type else "200")
