"""``Hl7Receiver.handle_message``: what the queue worker gets back for one queue body."""

from __future__ import annotations

import asyncio

from engine.commands import Command, Outcome
from engine.errors import EngineError, MalformedMessage, StoreUnavailable, UnroutableMessage
from engine.routing import Router
from engine.rules import RoutingRules
from inbound.hl7.receiver import Hl7Receiver
from tests.fakes import FixedClock

A08 = (b"MSH|^~\\&|APP|GHH|PB|PB|20260101||ADT^A08^ADT_A01|Q-1|P|2.5.1\r"
       b"PID|1||1^^^GHH^MR||DOE^JANE")


class Committer:
    def __init__(self, error: EngineError | None = None) -> None:
        self.error = error
        self.applied: list[Command] = []

    async def apply(self, command: Command) -> Outcome:
        if self.error is not None:
            raise self.error
        self.applied.append(command)
        return Outcome("applied")


def handle(rules: RoutingRules, body: bytes,
           committer: Committer | None = None) -> tuple[list[str], EngineError | None]:
    committer = committer or Committer()
    receiver = Hl7Receiver(Router(rules), committer.apply, FixedClock(), rules.hl7)
    acks, error = asyncio.run(receiver.handle_message(body))
    return [ack.decode("latin-1").split("\r")[1] for ack in acks], error


def test_an_applied_message_has_no_error_and_an_aa(rules: RoutingRules) -> None:
    committer = Committer()
    msa, error = handle(rules, A08, committer)
    assert error is None and msa == ["MSA|AA|Q-1"] and len(committer.applied) == 1


def test_refusals_come_back_with_their_error_class(rules: RoutingRules) -> None:
    msa, error = handle(rules, b"not hl7 at all")
    assert isinstance(error, MalformedMessage) and msa[0].startswith("MSA|AR")
    msa, error = handle(rules, A08.replace(b"ADT^A08^ADT_A01", b"ORU^R01^ORU_R01"))
    assert isinstance(error, UnroutableMessage) and error.location == "MSH-9"
    assert msa[0].startswith("MSA|AR|Q-1")


def test_a_body_must_hold_exactly_one_message(rules: RoutingRules) -> None:
    msa, error = handle(rules, A08 + b"\r" + A08.replace(b"Q-1", b"Q-2"))
    assert isinstance(error, MalformedMessage) and "found 2" in error.reason
    assert msa[0].startswith("MSA|AR")


def test_a_database_outage_is_a_transient_error_with_an_ae(rules: RoutingRules) -> None:
    msa, error = handle(rules, A08, Committer(StoreUnavailable("database unavailable")))
    assert isinstance(error, StoreUnavailable) and msa[0].startswith("MSA|AE|Q-1")
