"""What the fuzzing feeds, and the property each input must keep.

- ``read_hl7``: bytes -> text -> messages -> header -> every field of every segment. Only a
  ``RejectedMessage`` (``Er7Error`` and the header's refusals: an AR with a reason) may come out.
- ``decode_stream``: an MLLP byte stream fed in chunks. The frames found do not depend on
  how the stream was cut, and the decoder never holds more than one frame's limit.
- ``Receiver``: the listener's receiver path (decode, split, read, route, translate, ACK),
  everything but the database (an in-memory ``apply``). Every frame is answered, unless each
  of its messages asked, in enhanced mode, for no acknowledgement of that outcome.
- ``FhirEndpoint``: the FHIR API as served (the app with its request limits, a bearer token),
  in-process, with an in-memory ``apply``. Every body gets an HTTP answer below 500, with an
  OperationOutcome when it is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import warnings
from datetime import UTC, datetime
from typing import Any

from engine.commands import ApplyAtomically, Command, Outcome, ResourceState
from engine.domain.clock import SystemClock
from engine.errors import RejectedMessage
from engine.routing import Router
from engine.rules import RoutingRules, parse_rules
from engine.store.database import open_database
from engine.store.migrate import upgrade
from inbound.hl7.batch import split_stream
from inbound.hl7.charset import decode_message
from inbound.hl7.header import read_header
from inbound.hl7.reader import Er7Error, parse
from inbound.hl7.receiver import Hl7Receiver
from inbound.http.app import create_app
from inbound.http.fhir import FhirDependencies
from inbound.http.limits import RequestLimits
from inbound.mllp import FramingError, MllpDecoder, OversizeFrame
from mpi.search import MpiSearch
from tests.fakes import FixedClock, InMemoryAuditLog, InMemoryStaffDirectory, SequentialIds
from tests.fuzz.rules import fuzz_rules

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # Starlette 1.x suggests httpx2
    from fastapi.testclient import TestClient

__all__ = ["FUZZ_RULES", "FhirEndpoint", "Receiver", "decode_stream", "read_hl7"]

TOKEN = "fuzz-token-0123456789"
FUZZ_RULES = fuzz_rules("fuzz", TOKEN)
MAX_FRAME = 64 * 1024


def rules() -> RoutingRules:
    return parse_rules(FUZZ_RULES)


def read_hl7(data: bytes) -> int:
    """Read everything in ``data``; the number of values read. Raises only ``RejectedMessage``."""
    text, encoding = decode_message(data, "cp1252")
    values = 0
    for message_text in split_stream(text).messages:
        message = parse(message_text, encoding)
        with contextlib.suppress(RejectedMessage):  # refused by name, the fields still read
            read_header(message)
        for segment in message.segments:
            for n in range(1, segment.field_count + 1):
                for element in segment.repetitions(n):
                    values += len(element.components())
        message.to_er7()
    return values


def decode_stream(stream: bytes, cuts: list[int], max_frame: int = MAX_FRAME) -> list[object]:
    """The frames of ``stream`` fed whole and fed cut at ``cuts``; asserts they agree."""
    whole = _frames(MllpDecoder(max_frame), [stream], max_frame)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert _frames(MllpDecoder(max_frame), pieces, max_frame) == whole, "frames depend on the cuts"
    return whole


def _frames(decoder: MllpDecoder, pieces: list[bytes], max_frame: int) -> list[object]:
    found: list[object] = []
    for piece in pieces:
        for item in decoder.feed(piece):
            assert isinstance(item, bytes | OversizeFrame | FramingError), item
            if isinstance(item, OversizeFrame):
                assert item.size > max_frame and len(item.head) <= 8192
                found.append(("oversize", item.size, item.head))
            else:
                assert not isinstance(item, bytes) or len(item) <= max_frame
                found.append(item)
            if isinstance(item, FramingError):
                found[-1] = "framing error"  # its byte count depends on the cuts; the place not
                return found  # the listener closes the connection here
        assert decoder.buffered <= max(max_frame, 8192)
    return found


class Receiver:
    """The listener's receiver with an in-memory ``apply`` (commands are counted, not stored)."""

    def __init__(self) -> None:
        routing = rules()
        self.applied = 0
        self.receiver = Hl7Receiver(Router(routing), self._apply, FixedClock(), routing.hl7)
        self.loop = asyncio.new_event_loop()

    async def _apply(self, command: Command) -> Outcome:
        self.applied += 1
        return Outcome("applied")

    def answer(self, frame: bytes | OversizeFrame) -> list[bytes]:
        """The replies to one frame; asserts it is answered unless it asked for silence."""
        replies = self.loop.run_until_complete(self.receiver.handle_frame(frame))
        assert all(isinstance(r, bytes) and r for r in replies)
        if not replies:
            assert isinstance(frame, bytes) and _silence_asked(frame), f"no answer to {frame!r}"
        return replies

    def close(self) -> None:
        self.loop.close()


def _silence_asked(frame: bytes) -> bool:
    """Whether every message of the frame asked (MSH-15/16) for no acknowledgement of one of
    its two possible outcomes, success or failure: then an empty answer may be right."""
    text, encoding = decode_message(frame, "cp1252")
    batch = split_stream(text)
    if batch.is_batch or not batch.messages:
        return False  # a batch is always answered with a batch of acknowledgements
    for message_text in batch.messages:
        try:
            header = read_header(parse(message_text, encoding))
        except Er7Error:
            return False  # unreadable: always answered with an AR
        # Worked out here from HL7 table 0155, not with ack_codes (the code under test): only
        # NE, ER and SU may leave an outcome unanswered; an empty MSH-15 means AL, MSH-16 NE.
        conditions = (header.accept_ack or "AL", header.application_ack or "NE")
        if not header.enhanced_mode or not set(conditions) <= {"NE", "ER", "SU"}:
            return False
    return True


class FhirEndpoint:
    """The FHIR API app in-process; ``post`` returns the status of one body's answer."""

    def __init__(self) -> None:
        routing = rules()
        database = open_database("sqlite://")
        upgrade(database)
        self.ids = SequentialIds()
        deps = FhirDependencies(apply=self._apply, rules=routing, ids=self.ids, clock=SystemClock())
        limits = RequestLimits(max_header_bytes=16384, max_body_bytes=1024 * 1024,
                               fhir_max_body_bytes=routing.fhir.max_body_bytes, body_timeout=30)
        app = create_app(search=MpiSearch(database.connect), staff=InMemoryStaffDirectory(),
                         audit=InMemoryAuditLog(), clock=SystemClock(), ready=dict, metrics=str,
                         version="fuzz", fhir=deps, limits=limits)
        self.client = TestClient(app)
        self.headers = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {TOKEN}"}

    async def _apply(self, command: Command) -> Outcome:
        if isinstance(command, ApplyAtomically):
            return Outcome("applied", parts=tuple([self._saved()] * len(command.commands)))
        return self._saved()

    def _saved(self) -> Outcome:
        state = ResourceState(record_id=self.ids.new_id(), version=1, created=True, changed=True,
                              last_updated=datetime.now(UTC))
        return Outcome("applied", resource=state)

    def post(self, body: bytes, path: str = "/fhir/Patient") -> int:
        """POST one body; asserts the answer is not a server error and refusals explain."""
        response = self.client.post(path, content=body, headers=self.headers)
        assert response.status_code < 500, (response.status_code, response.text[:300], body[:300])
        if response.status_code >= 400:
            outcome: Any = json.loads(response.content)
            assert outcome["resourceType"] == "OperationOutcome", outcome
            assert outcome["issue"][0]["diagnostics"], outcome
        return response.status_code

    def close(self) -> None:
        self.client.close()
