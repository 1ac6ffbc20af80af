"""Where portalbridge leans on a dependency's internals, a test that fails when they change.

Each test names the code that relies on the behaviour. The rest of the suite exercises the
same code end to end; these say exactly what broke when a new release of a dependency is
pinned in constraints.txt. uvicorn's h11 protocol (``inbound.http.server.TimedH11Protocol``)
is pinned by tests/integration/test_http_limits.py (the head deadline tests).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from typing import Any

import amqp
import pytest
import uvicorn
from amqp.method_framing import frame_writer
from kombu import Connection, Exchange, Producer, Queue
from sqlalchemy import Engine, Integer, String, insert, select, text
from sqlalchemy.schema import Column, MetaData, Table

from engine.bootstrap import _EmbeddedUvicorn
from engine.broker import open_connection
from engine.store.database import open_database
from outbound.kombu_publisher import KombuStatusPublisher


def test_embedded_uvicorn_leaves_the_signals_to_the_engine() -> None:
    """engine.bootstrap._EmbeddedUvicorn overrides uvicorn.Server.capture_signals (not public
    API): uvicorn must not take SIGINT/SIGTERM from the engine, which stops every component."""
    assert callable(getattr(uvicorn.Server, "capture_signals", None))

    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - no request
        return None

    def ours(signum: int, frame: object) -> None:  # pragma: no cover - never delivered
        return None

    async def serve() -> object:
        server = _EmbeddedUvicorn(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off",
                                                 log_level="warning"))
        task = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        during = signal.getsignal(signal.SIGTERM)
        server.should_exit = True
        await task
        return during

    previous = signal.signal(signal.SIGTERM, ours)
    try:
        assert asyncio.run(serve()) is ours  # uvicorn's capture_signals would have replaced it
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def pg(postgres_url: str) -> Iterator[tuple[Engine, Table]]:
    engine = open_database(postgres_url)
    table = Table("contract_pipeline", MetaData(), Column("id", Integer, primary_key=True),
                  Column("name", String(20)))
    table.create(engine, checkfirst=True)
    yield engine, table
    table.drop(engine)
    engine.dispose()


def test_sqlalchemy_statements_run_inside_a_psycopg_pipeline(pg: tuple[Engine, Table]) -> None:
    """engine.store.sql_uow._pipelined and mpi.sql._locked_rows_pg: SQLAlchemy's statements (no
    RETURNING) and the driver's own cursor inside ``driver_connection.pipeline()``."""
    engine, table = pg
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None and callable(getattr(driver, "pipeline", None))
        with driver.pipeline():
            conn.execute(insert(table).inline(), [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
            cursor = driver.cursor()
            cursor.execute("SELECT count(*) FROM contract_pipeline")
        assert cursor.fetchall() == [(2,)]  # read after the pipeline, as _locked_rows_pg does
        with driver.pipeline():
            conn.commit()
    with engine.connect() as conn:
        assert conn.execute(select(table.c.name).order_by(table.c.id)).scalars().all() == ["a", "b"]
        assert conn.execute(text("SELECT 1")).scalar_one() == 1


def test_py_amqp_takes_a_frame_writer_and_reports_its_capabilities(amqp_url: str) -> None:
    """outbound.amqp_publisher: ``frame_writer`` passed to py-amqp's Connection (through
    kombu's transport options), built with (connection, transport), and the client
    capabilities dict whose ``connection.blocked`` the publisher turns off."""
    calls: list[tuple[Any, Any]] = []

    def writer(connection: Any, transport: Any) -> Any:
        calls.append((connection, transport))
        return frame_writer(connection, transport)

    connection = open_connection(amqp_url, amqp_options={"frame_writer": writer})
    try:
        raw = connection.connection
        assert calls and calls[0][0] is raw and callable(getattr(calls[0][1], "write", None))
        assert isinstance(raw.client_properties.get("capabilities"), dict)
        assert "connection.blocked" in raw.client_properties["capabilities"]
        channel = connection.channel()
        channel.confirm_select()
        acks: list[tuple[int, bool]] = []
        channel.events["basic_ack"].add(lambda tag, multiple: acks.append((tag, multiple)))
        channel.basic_publish(amqp.Message(b"contract"), exchange="", routing_key="no.such.queue")
        raw.drain_events(timeout=5)  # the broker's confirm arrives as a channel event
        assert acks == [(1, False)]
        channel.close()
    finally:
        connection.release()


def test_kombu_virtual_channels_answer_which_queues_a_key_reaches() -> None:
    """outbound.kombu_publisher.KombuStatusPublisher._routable: a virtual channel's
    ``get_table`` and ``typeof(exchange).lookup`` (kombu's in-process transports)."""
    with Connection("memory://contract") as connection:
        channel = connection.channel()
        exchange = Exchange("portalbridge.status", type="topic")
        # kombu's memory transport is one broker per process: the queue must not outlive
        # this test, or other tests' events would find it and no longer be unrouted.
        queue = Queue("contract.mpi", exchange=exchange, routing_key="contract.*")(channel)
        queue.declare()
        try:
            Producer(channel, exchange=exchange).declare()
            status = "portalbridge.status"
            assert KombuStatusPublisher._routable(channel, status, "contract.changed")
            assert not KombuStatusPublisher._routable(channel, status, "contract.other.key")
            # The default exchange routes by queue name (enrollment requests use it).
            assert KombuStatusPublisher._routable(channel, "", "contract.mpi")
            assert not KombuStatusPublisher._routable(channel, "", "contract.nobody")
        finally:
            queue.delete()
            channel.close()
