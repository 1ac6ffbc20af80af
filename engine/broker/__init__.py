"""The engine's side of RabbitMQ: the topology users depend on and the broker's error mapping.

Like ``engine.store`` for the database, this is shared by both edges: the relay (outbound)
publishes to the status exchange and the workers (inbound) consume the inbound queues, and
both declare the same topology at start. Nothing here connects at import time.
"""

from __future__ import annotations

from engine.broker.errors import BrokerRefused, BrokerUnavailable, broker_errors, classify_broker_error
from engine.broker.partitions import declare_partitions, partition_of, partition_queue
from engine.broker.topology import (
    DEAD_EXCHANGE,
    DEAD_LETTER_QUEUE,
    DELIVERY_LIMIT,
    ENROLLMENT_QUEUE,
    HL7_QUEUE,
    INBOUND_QUEUES,
    SEQUENCE_HEADER,
    STATUS_EXCHANGE,
    DeadLetterHeaders,
    dead_letter_headers,
    declare_topology,
    is_amqp_url,
    open_connection,
)

__all__ = [
    "DEAD_EXCHANGE",
    "DEAD_LETTER_QUEUE",
    "DELIVERY_LIMIT",
    "ENROLLMENT_QUEUE",
    "HL7_QUEUE",
    "INBOUND_QUEUES",
    "SEQUENCE_HEADER",
    "STATUS_EXCHANGE",
    "BrokerRefused",
    "BrokerUnavailable",
    "DeadLetterHeaders",
    "broker_errors",
    "classify_broker_error",
    "dead_letter_headers",
    "declare_partitions",
    "declare_topology",
    "is_amqp_url",
    "open_connection",
    "partition_of",
    "partition_queue",
]
