"""The topology of DESIGN.md section 3, declared idempotently on the real RabbitMQ."""

from __future__ import annotations

import json

import pytest

from engine.broker import (
    DEAD_LETTER_QUEUE,
    DELIVERY_LIMIT,
    ENROLLMENT_QUEUE,
    HL7_QUEUE,
    declare_topology,
    open_connection,
)
from engine.errors import ConfigurationError
from tests.integration.conftest import rabbitmqctl
from tests.integration.relay_support import Downstream


def declare(url: str) -> None:
    connection = open_connection(url)
    try:
        declare_topology(connection.channel())
    finally:
        connection.release()


def test_topology_is_declared_idempotently_with_quorum_queues_and_dead_letters(
        amqp_url: str, rabbitmq_vhost: str) -> None:
    declare(amqp_url)
    declare(amqp_url)
    queues = {q["name"]: q for q in json.loads(rabbitmqctl(
        "list_queues", "-p", rabbitmq_vhost, "name", "type", "durable", "arguments",
        "--formatter", "json"))}
    for name in (ENROLLMENT_QUEUE, HL7_QUEUE):
        assert queues[name]["type"] == "quorum" and queues[name]["durable"]
        arguments = {key: value for key, _type, value in queues[name]["arguments"]}
        assert arguments["x-dead-letter-exchange"] == "portalbridge.dead"
        assert arguments["x-delivery-limit"] == DELIVERY_LIMIT
        # One consumer at a time takes HL7 messages: they are applied in arrival order.
        assert arguments.get("x-single-active-consumer", False) is (name == HL7_QUEUE)
    assert queues[DEAD_LETTER_QUEUE]["durable"]
    exchanges = {e["name"]: e for e in json.loads(rabbitmqctl(
        "list_exchanges", "-p", rabbitmq_vhost, "name", "type", "durable", "--formatter", "json"))}
    assert exchanges["portalbridge.status"]["type"] == "topic"
    assert exchanges["portalbridge.status"]["durable"]
    assert exchanges["portalbridge.dead"]["durable"]


def test_a_queue_declared_otherwise_is_a_configuration_error(
        amqp_url: str, downstream: Downstream) -> None:
    declare(amqp_url)
    downstream.channel.queue_delete(ENROLLMENT_QUEUE)
    downstream.channel.queue_declare(ENROLLMENT_QUEUE, durable=True)  # classic, no arguments
    try:
        with pytest.raises(ConfigurationError, match="other arguments"):
            declare(amqp_url)
    finally:
        downstream.channel.queue_delete(ENROLLMENT_QUEUE)
        declare(amqp_url)
