"""HL7 v2 through the whole core with fakes: receiver, router, translation, the real message
bus and index over the in-memory repository. Messages are written as lists of segments."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from engine.commands import Command, Outcome
from engine.handlers import MessageBus
from engine.routing import Router
from engine.rules import RoutingRules, parse_rules
from inbound.hl7.receiver import Hl7Receiver
from mpi.model import SourceRecord
from mpi.repository import InMemoryMpiRepository
from tests.fakes import FixedClock, InMemoryUnitOfWork, SequentialIds

__all__ = ["RULES", "Ack", "Pipeline", "message"]

RULES = """
facilities:
  - {code: NORTH, tier: 1, assigning_authority: NGH, authority_preference: [ECC]}
  - {code: EAST, tier: 2, assigning_authority: ECC}
routes:
  - {match: {message_type: ADT, trigger: [A01, A04, A08, A28, A31]}, action: upsert_patient}
  - {match: {message_type: ADT, trigger: [A18, A30, A34, A35, A36, A39, A40]},
     action: merge_patients}
  - {match: {message_type: ADT, trigger: A47}, action: change_identifier}
  - {match: {message_type: ADT}, action: ignore, reason: not used}
"""


def message(*segments: str, trigger: str = "A08", version: str = "2.5.1", control: str = "C1",
            facility: str = "NORTH", application: str = "ADT") -> bytes:
    """An ADT message: MSH made up from the arguments, then ``segments`` (CR-separated)."""
    structure = {"A40": "ADT_A39", "A39": "ADT_A39", "A34": "ADT_A30", "A35": "ADT_A30",
                 "A36": "ADT_A30"}.get(trigger, f"ADT_{trigger}")
    msh = (f"MSH|^~\\&|{application}|{facility}|PB|PB|20260301101500||ADT^{trigger}^{structure}|"
           f"{control}|P|{version}")
    return "\r".join([msh, f"EVN|{trigger}|20260301101500", *segments]).encode()


class Ack:
    """One acknowledgement, by segment: ``ack["MSA"][1]`` is the code; ERR may repeat."""

    def __init__(self, text: str) -> None:
        self.segments = [s.split("|") for s in text.split("\r") if s]

    def __getitem__(self, name: str) -> list[str]:
        return next(s for s in self.segments if s[0] == name)

    def all(self, name: str) -> list[list[str]]:
        return [s for s in self.segments if s[0] == name]

    @property
    def code(self) -> str:
        return self["MSA"][1]

    @property
    def text(self) -> str:
        msa = self["MSA"]
        return msa[3] if len(msa) > 3 else ""


class Pipeline:
    """A receiver whose commands run through the real bus, committed one by one."""

    def __init__(self, rules_yaml: str = RULES) -> None:
        self.rules: RoutingRules = parse_rules(rules_yaml)
        self.repository = InMemoryMpiRepository()
        self.bus = MessageBus(self.rules, FixedClock(step=timedelta(seconds=1)), SequentialIds())
        self.receiver = Hl7Receiver(Router(self.rules), self._apply, FixedClock(), self.rules.hl7)
        self.applied: list[Command] = []

    async def _apply(self, command: Command) -> Outcome:
        uow = InMemoryUnitOfWork(mpi=self.repository)
        self.bus.prefetch([command], uow)
        outcome = self.bus.handle(command, uow)
        uow.commit()
        self.applied.append(command)
        return outcome

    def send(self, payload: bytes) -> Ack:
        """The last acknowledgement of one message."""
        replies = asyncio.run(self.receiver.handle_frame(payload))
        return Ack(replies[-1].decode("utf-8"))

    def records(self, facility: str = "NORTH") -> list[SourceRecord]:
        return sorted((r for r in self.repository.records.values() if r.key.facility == facility),
                      key=lambda r: r.id)

    def record(self, authority: str, mrn: str, facility: str = "NORTH") -> SourceRecord:
        return next(r for r in self.records(facility)
                    if (r.key.authority, r.key.mrn) == (authority, mrn))
