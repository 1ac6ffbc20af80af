"""From an MLLP frame to its acknowledgements: decode, split, read, route, translate, apply.

Every failure becomes an acknowledgement with a reason; nothing here raises to the
listener. ``prepare`` (everything before the database) is shared with ``route explain``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from engine.commands import Command, Outcome
from engine.domain.clock import Clock
from engine.errors import EngineError, RejectedMessage, TransientFailure, UnroutableMessage
from engine.routing import RouteDecision, Router
from engine.rules import MERGE_TRIGGERS, Action, Hl7Rules
from inbound.hl7.ack import AckParts, ack_codes, build_ack
from inbound.hl7.adt import translate
from inbound.hl7.batch import Batch, split_stream
from inbound.hl7.charset import decode_message
from inbound.hl7.glued import find_glued, split_glued
from inbound.hl7.header import Header, control_id_of, read_header
from inbound.hl7.limits import check_header, check_text
from inbound.hl7.reader import Delimiters, Er7Error, Er7Message, parse
from inbound.mllp import OversizeFrame

__all__ = ["Hl7Receiver", "Prepared", "prepare", "sniff_control_id"]

log = logging.getLogger(__name__)

Apply = Callable[[Command], Awaitable[Outcome]]
Validate = Callable[[str], None]
Replies = tuple[list[str], EngineError | None]
#: Runs work on the writer thread (``GroupCommitter.run``), when the receiver is given one.
RunOnWriter = Callable[["_MessageWork"], Awaitable[Replies | None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    """A message read and routed, ready to apply (or already answered)."""

    message: Er7Message | None
    header: Header | None
    delimiters: Delimiters
    control_id: str
    decision: RouteDecision | None = None
    command: Command | None = None
    error: EngineError | None = None  # refused before the database
    note: str = ""  # text for the ACK: why nothing is applied, or what the command cannot do
    warnings: tuple[RejectedMessage, ...] = ()  # repaired, applied anyway (ERR severity W)


def prepare(text: str, encoding: str, router: Router,
            validate: Validate | None = None) -> Prepared:
    """Read and route one message; errors are returned in ``Prepared.error``, not raised."""
    try:
        message = parse(text, encoding)
    except Er7Error as exc:
        return Prepared(message=None, header=None, delimiters=Delimiters(),
                        control_id=sniff_control_id(text), error=exc)
    try:
        header = read_header(message)
    except RejectedMessage as exc:
        return Prepared(message=message, header=None, delimiters=message.delimiters,
                        control_id=control_id_of(message), error=exc)
    read = Prepared(message=message, header=header, delimiters=message.delimiters,
                    control_id=header.control_id)
    try:
        decision = router.route(header.route_request())
        route = decision.route
        if route.action is Action.REJECT:
            raise UnroutableMessage(route.reason, "MSH-9", code="200")
        _check_merge_route(header, decision)
        if route.action is Action.IGNORE:
            return replace(read, decision=decision, note=_ignored(decision))
        message, warnings = _unglued(message, encoding, decision)
        # Only a message that will be stored must fit the store (an ignored one is not).
        check_header(header)
        check_text(message)
        if route.strict and validate is not None:
            validate(message.to_er7())
        command, note = translate(message, header, decision)
        return replace(read, message=message, decision=decision, command=command, note=note,
                       warnings=warnings)
    except RejectedMessage as exc:
        return replace(read, error=exc)


def _check_merge_route(header: Header, decision: RouteDecision) -> None:
    """A merge is applied or refused: acknowledging it while applying nothing loses it."""
    action = decision.route.action
    if (header.message_type == "ADT" and header.trigger in MERGE_TRIGGERS
            and action is not Action.MERGE_PATIENTS):
        raise UnroutableMessage(
            f"event {header.trigger} merges patient records, but {decision.label} would "
            f"{action.value} it: "
            "route it to merge_patients in routing.yaml", "MSH-9.2", code="201")


def _unglued(message: Er7Message, encoding: str,
             decision: RouteDecision) -> tuple[Er7Message, tuple[RejectedMessage, ...]]:
    """The message with glued segments refused, or split apart with a warning each."""
    glued = find_glued(message)
    if not glued:
        return message, ()
    if decision.route.glued_segments != "split":
        raise glued[0].refusal()
    warnings = tuple(RejectedMessage(g.warning(), g.location) for g in glued)
    return parse(split_glued(message, glued), encoding), warnings


def _ignored(decision: RouteDecision) -> str:
    reason = decision.route.reason or "the route applies nothing"
    return f"not applied: {reason}"


def sniff_control_id(text: str) -> str:
    """Best-effort MSH-10 of a message we could not parse, so the AR can still echo it."""
    start = text.find("MSH")
    if start < 0 or len(text) < start + 4:
        return ""
    separator = text[start + 3]
    first_segment = text[start:].replace("\n", "\r").split("\r", 1)[0]
    fields = first_segment.split(separator)
    return fields[9].strip()[:199] if len(fields) > 9 else ""


class Hl7Receiver:
    """Answers MLLP frames; one instance serves every connection of a listener."""

    def __init__(self, router: Router, apply: Apply, clock: Clock, rules: Hl7Rules, *,
                 validate: Validate | None = None, run_on_writer: RunOnWriter | None = None) -> None:
        self._router = router
        self._apply = apply
        self._run_on_writer = run_on_writer
        self._clock = clock
        self._rules = rules
        self._validate = validate
        self._ack_ids = (f"PB{n}" for n in itertools.count(1))
        self._ack_prefix = format(int(clock.now().timestamp() * 1000), "x")

    async def handle_frame(self, payload: bytes | OversizeFrame) -> list[bytes]:
        if isinstance(payload, OversizeFrame):
            error = RejectedMessage(f"message of {payload.size} bytes exceeds the limit of "
                                    f"{self._rules.max_frame_bytes}", "MSH")
            return [self._refusal(payload.head, error)]
        try:
            batch, encoding = self._read(payload)
        except Er7Error as exc:
            return [self._refusal(payload, exc)]
        replies: list[str] = []
        for message_text in batch.messages:
            replies.extend((await self._answer(message_text, encoding))[0])
        if batch.is_batch:
            replies = [self._batch_envelope(replies)]
        return [r.encode(encoding, errors="replace") for r in replies]

    async def handle_message(self, payload: bytes) -> tuple[list[bytes], EngineError | None]:
        """Answer one unframed message (a queue body): its ACKs and the error they report.

        The error (None when applied) lets a queue consumer ack, retry or dead-letter by its
        class; a body holding more or less than one message is refused as malformed.
        """
        try:
            batch, encoding = self._read(payload)
            if len(batch.messages) != 1:
                raise Er7Error(f"expected one HL7 message, found {len(batch.messages)}", "MSH")
        except Er7Error as exc:
            return [self._refusal(payload, exc)], exc
        replies, error = await self._answer(batch.messages[0], encoding)
        return [r.encode(encoding, errors="replace") for r in replies], error

    async def _answer(self, text: str, encoding: str) -> Replies:
        if self._run_on_writer is not None:
            replies = await self._run_on_writer(_MessageWork(self, text, encoding))
            if replies is not None:
                return replies
            # The route is strict: hl7apy validates, off the writer and off the loop.
            prepared = await asyncio.to_thread(self._prepare_safely, text, encoding, self._validate)
        else:
            prepared = await self._prepare(text, encoding)
        outcome: Outcome | None = None
        error = prepared.error
        if error is None and prepared.command is not None:
            try:
                outcome = await self._apply(prepared.command)
            except EngineError as exc:
                error = exc
        return self._replies(prepared, outcome, error)

    def _replies(self, prepared: Prepared, outcome: Outcome | None, error: EngineError | None) -> Replies:
        error = error or prepared.error
        self._log(prepared, error)
        parts = AckParts(header=prepared.header, delimiters=prepared.delimiters,
                         control_id=prepared.control_id, error=error,
                         text=(outcome.detail if outcome is not None else "") or prepared.note,
                         warnings=prepared.warnings if error is None else ())
        return [self._ack(parts, code) for code in ack_codes(prepared.header, error)], error

    def _is_strict(self, prepared: Prepared) -> bool:
        decision = prepared.decision
        return self._validate is not None and decision is not None and decision.route.strict

    async def _prepare(self, text: str, encoding: str) -> Prepared:
        prepared = self._prepare_safely(text, encoding)
        if not self._is_strict(prepared):
            return prepared
        # Strict validation with hl7apy is slow: only for routes that ask, and off the loop.
        return await asyncio.to_thread(self._prepare_safely, text, encoding, self._validate)

    def _prepare_safely(self, text: str, encoding: str, validate: Validate | None = None) -> Prepared:
        """``prepare``, with a bug turned into an AE (resend later) rather than no answer."""
        try:
            return prepare(text, encoding, self._router, validate)
        except Exception:
            log.exception("reading an HL7 message failed unexpectedly")
            return _internal_failure(text)

    def _ack(self, parts: AckParts, code: str) -> str:
        return build_ack(parts, code, now=self._clock.now(), ack_id=self._next_ack_id(),
                         defaults=(self._rules.receiving_application, self._rules.receiving_facility))

    def _next_ack_id(self) -> str:
        return f"{self._ack_prefix}{next(self._ack_ids)}"

    def _read(self, payload: bytes) -> tuple[Batch, str]:
        text, encoding = decode_message(payload, self._rules.fallback_encoding)
        return split_stream(text), encoding

    def _refusal(self, payload: bytes, error: EngineError) -> bytes:
        """The answer to bytes that could not be read as messages at all."""
        text = payload.decode("latin-1", errors="replace")
        [ack], _ = self._replies(_unreadable(text, error), None, None)
        return ack.encode("latin-1", errors="replace")

    def _batch_envelope(self, acks: list[str]) -> str:
        d = Delimiters()
        now = self._clock.now().strftime("%Y%m%d%H%M%S")
        bhs = d.field.join(["BHS", d.encoding_characters, self._rules.receiving_application,
                            self._rules.receiving_facility, "", "", now])
        bts = d.field.join(["BTS", str(len(acks))])
        return "\r".join([bhs, *(a.rstrip("\r") for a in acks), bts]) + "\r"

    @staticmethod
    def _log(prepared: Prepared, error: EngineError | None) -> None:
        header = prepared.header
        sender = header.sender if header else "?"
        kind = f"{header.message_type}^{header.trigger}" if header else "?"
        if error is None:
            log.debug("applied %s %s from %s", kind, prepared.control_id, sender)
            for warning in prepared.warnings:  # places and segment names only: no values
                log.warning("repaired %s %s from %s at %s: segments glued together were split",
                            kind, prepared.control_id, sender, warning.location)
        elif isinstance(error, TransientFailure):
            log.warning("AE %s %s from %s: %s", kind, prepared.control_id, sender, error.reason)
        else:
            # Code and place only: the reason may quote the message, and the ACK carries it.
            where = getattr(error, "location", None) or "-"
            log.info("AR %s %s from %s at %s: %s %s", kind, prepared.control_id, sender, where,
                     getattr(error, "hl7_error_code", "-"), type(error).__name__)


def _unreadable(text: str, error: EngineError) -> Prepared:
    """A message that could not be read: answered by the control id sniffed from its text."""
    return Prepared(message=None, header=None, delimiters=Delimiters(),
                    control_id=sniff_control_id(text), error=error)


def _internal_failure(text: str) -> Prepared:
    return _unreadable(text, TransientFailure("internal error while reading the message"))


class _MessageWork:
    """One message read, routed and answered on the writer thread (see ``committer.Work``)."""

    __slots__ = ("_encoding", "_prepared", "_receiver", "_strict", "_text")

    def __init__(self, receiver: Hl7Receiver, text: str, encoding: str) -> None:
        self._receiver, self._text, self._encoding = receiver, text, encoding
        self._prepared: Prepared | None = None
        self._strict = False

    def prepare(self) -> Command | None:
        prepared = prepare(self._text, self._encoding, self._receiver._router)
        if self._receiver._is_strict(prepared):
            self._strict = True  # hl7apy is too slow for the writer: answered None below
            return None
        self._prepared = prepared
        return prepared.command if prepared.error is None else None

    def complete(self, outcome: Outcome | None, error: EngineError | None) -> Replies | None:
        if self._strict:
            return None
        # No prepared message: preparing it raised (a bug), and ``error`` says so: AE.
        prepared = self._prepared or _internal_failure(self._text)
        return self._receiver._replies(prepared, outcome, error)
