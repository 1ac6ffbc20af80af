"""A downstream system subscribing to portalbridge's status events, written with pika.

It declares its own durable queue, binds it to the ``portalbridge.status`` topic exchange,
prints each event, acknowledges it, and drops events it has already seen (portalbridge
delivers at least once: a redelivered or replayed event carries the same id). The
``portalbridge-sequence`` header increases by one per patient or member, so a gap or a step
back shows a missed or reordered event.

    python examples/subscriber.py --url amqp://guest:guest@127.0.0.1:5672/%2F \\
        --queue billing.status --bind 'member.*' --bind mpi.changed
"""

from __future__ import annotations

import argparse
import json
from collections import OrderedDict

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

EXCHANGE = "portalbridge.status"


class SeenIds:
    """The last ``size`` event ids; a real subscriber keeps them in its own database."""

    def __init__(self, size: int = 100_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def first_time(self, event_id: str) -> bool:
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument("--queue", default="example.status-subscriber")
    parser.add_argument("--bind", action="append", help="routing key pattern (default #)")
    args = parser.parse_args()
    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.exchange_declare(EXCHANGE, "topic", durable=True)
    channel.queue_declare(args.queue, durable=True)
    for pattern in args.bind or ["#"]:
        channel.queue_bind(args.queue, EXCHANGE, pattern)
    seen, last_sequence = SeenIds(), {}

    def on_event(ch: BlockingChannel, method: Basic.Deliver, properties: BasicProperties,
                 body: bytes) -> None:
        event = json.loads(body)
        if seen.first_time(event["id"]):
            sequence = (properties.headers or {}).get("portalbridge-sequence")
            previous = last_sequence.get(event["subject"])
            gap = "" if previous is None or sequence == previous + 1 else f" (after {previous})"
            last_sequence[event["subject"]] = sequence
            print(f"{event['type']} subject={event['subject']} sequence={sequence}{gap} "
                  f"id={event['id']}", flush=True)
        ch.basic_ack(method.delivery_tag)  # after our own work is done, duplicate or not

    channel.basic_qos(prefetch_count=100)
    channel.basic_consume(args.queue, on_event)
    try:
        channel.start_consuming()
    except KeyboardInterrupt:
        channel.stop_consuming()
    connection.close()


if __name__ == "__main__":
    main()
