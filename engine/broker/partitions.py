# mypy: disable-error-code="no-untyped-call"
# (kombu annotates only part of its API; its calls are checked by the tests instead)
"""Partitions of the inbound HL7 queue: order per patient, parallel across patients.

With ``PORTALBRIDGE_INBOUND_PARTITIONS=N`` a message that arrives on ``portalbridge.inbound.hl7``
is moved to one of N quorum queues ``portalbridge.inbound.hl7.p0`` ... ``.p{N-1}``, chosen
by a hash of its patient key (the record the message is about: facility, assigning
authority, MRN). Each queue, the entry queue too, has a single active consumer
(RabbitMQ's ``x-single-active-consumer``): messages of one patient are applied in the
order they arrived while the partitions run in different ``worker`` processes, on
different hosts. Standby consumers take over when the active one goes away.

The hash is CRC-32 of the UTF-8 key, modulo N: stable across processes, hosts and Python
versions (Python's own ``hash`` of a string is not). A producer may use ``partition_of``
and publish to a partition queue itself; changing N re-maps patients, so change it only
when the queues are drained.
"""

from __future__ import annotations

import zlib
from typing import Any

from kombu.entity import Queue

from engine.broker.errors import broker_errors
from engine.broker.topology import HL7_QUEUE, INBOUND_QUEUE_ARGUMENTS

__all__ = ["declare_partitions", "partition_of", "partition_queue"]


def partition_queue(number: int) -> str:
    """The name of partition ``number``'s queue."""
    return f"{HL7_QUEUE}.p{number}"


def partition_of(patient_key: str, partitions: int) -> int:
    """The partition of ``patient_key`` among ``partitions`` (at least 1)."""
    return zlib.crc32(patient_key.encode("utf-8")) % partitions


def declare_partitions(channel: Any, partitions: int) -> None:
    """Declare the ``partitions`` partition queues (idempotent)."""
    arguments = {**INBOUND_QUEUE_ARGUMENTS, "x-single-active-consumer": True}
    with broker_errors():
        for number in range(partitions):
            Queue(partition_queue(number), durable=True,
                  queue_arguments=dict(arguments)).declare(channel=channel)
