# mypy: disable-error-code="no-untyped-call"
# (kombu annotates only part of its API; its calls are checked by the tests instead)
"""Moving HL7 messages from the entry queue to their partition (``engine.broker.partitions``).

Every ``worker`` of a partitioned deployment consumes ``portalbridge.inbound.hl7`` as a
dispatcher; the queue's single active consumer makes exactly one of them move messages at a
time, in arrival order. For each message the dispatcher reads the patient key, publishes the
message (body, properties and headers unchanged, persistent, confirmed) to the key's
partition queue, and only then acks it: a dispatcher that dies in between leaves the message
to be moved again, and the inbox turns the copy into an AA without applying it twice.

The patient key is the record the message's first PID segment names, read by the same
reader, router and translation the worker applies it with: facility, assigning authority
and MRN (the survivor of an A40, the new identifier of an A47, which therefore share a
partition with the messages that follow them). A message that cannot be read or routed has
no key; it goes to partition 0, where the worker refuses it with its reason as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kombu.message import Message
from kombu.messaging import Producer

from engine.broker import broker_errors, partition_of, partition_queue
from engine.commands import ChangePatientIdentifier, Command, MergePatientRecords, UpsertPatientRecord
from engine.routing import Router
from engine.rules import Hl7Rules
from inbound.hl7.batch import split_stream
from inbound.hl7.charset import decode_message
from inbound.hl7.receiver import prepare
from mpi.model import RecordKey

__all__ = ["PartitionDispatcher", "patient_key"]

log = logging.getLogger(__name__)

KeyOf = Callable[[bytes], str]


def patient_key(body: bytes, router: Router, rules: Hl7Rules) -> str:
    """``facility|authority|MRN`` of the record an HL7 message is about; "" if none."""
    try:
        text, encoding = decode_message(body, rules.fallback_encoding)
        messages = split_stream(text).messages
        command = prepare(messages[0], encoding, router).command if len(messages) == 1 else None
    except Exception:  # noqa: BLE001 - unreadable here means refused by the worker, with its reason
        return ""
    key = _record_key(command)
    return f"{key.facility}|{key.authority}|{key.mrn}" if key is not None else ""


def _record_key(command: Command | None) -> RecordKey | None:
    if isinstance(command, UpsertPatientRecord):
        return command.key
    if isinstance(command, MergePatientRecords) and command.merges:
        return command.merges[0].survivor
    if isinstance(command, ChangePatientIdentifier) and command.changes:
        return command.changes[0].new
    return None


class PartitionDispatcher:
    """Moves each message of the entry queue to its partition queue, then acks it."""

    def __init__(self, partitions: int, key_of: KeyOf) -> None:
        self.partitions = partitions
        self._key_of = key_of
        self.moved = 0

    def move(self, message: Message, producer: Producer) -> None:
        """Publish ``message`` to its partition (confirmed), then ack it on the entry queue."""
        queue = partition_queue(partition_of(self._key_of(message.body), self.partitions))
        properties: dict[str, Any] = message.properties
        passed = {name: properties[name] for name in ("message_id", "correlation_id", "reply_to")
                  if properties.get(name)}
        with broker_errors():  # the connection confirms each publish before it returns
            producer.publish(message.body, exchange="", routing_key=queue,
                             headers=dict(message.headers or {}), delivery_mode=2, mandatory=True,
                             content_type=properties.get("content_type") or "application/octet-stream",
                             content_encoding=properties.get("content_encoding") or "binary",
                             retry=False, **passed)
            message.ack()
        self.moved += 1
        log.debug("worker: message %s moved to %s", properties.get("message_id", "-"), queue)
