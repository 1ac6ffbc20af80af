"""The real engine's MLLP listener under clients that take too much: connections and time.

The cap of 1,000 connections is tested as it ships: this process may open 20,000 files here
(``ulimit -n``), enough for 1,001 client sockets and the listener's 1,000; the test checks
that before it starts, so it cannot pass by running out of descriptors instead.
"""

from __future__ import annotations

import resource
import socket
import time
from pathlib import Path

import httpx
import pytest

from engine.config import ListenerLimits
from tests.integration.engine_harness import MllpConnection, adt, msa, running_engine

CAP = 1000


def test_the_connection_over_the_cap_is_refused_while_the_first_ones_still_work(
        database_url: str, rules_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft >= 2 * CAP + 200, f"ulimit -n is {soft}: too low to test {CAP} connections"
    with running_engine(database_url, rules_file, frozenset({"listen", "api"}),
                        ListenerLimits(mllp_max_connections=CAP)) as engine:
        clients = [MllpConnection(engine.mllp_port) for _ in range(CAP)]
        try:
            _wait_for_connections(engine.http, CAP)
            refused = socket.create_connection(("127.0.0.1", engine.mllp_port), timeout=5)
            assert refused.recv(100) == b""  # closed at once by the listener
            refused.close()
            for number, client in enumerate(clients):
                client.send(adt(f"C{number}", f"M{number}"))
            assert [msa(client.receive())[1] for client in clients] == ["AA"] * CAP
            metrics = httpx.get(f"{engine.http}/metrics").text
            assert "portalbridge_mllp_refused_connections_total 1" in metrics
            assert "refused an MLLP connection" in caplog.text
            clients.pop().close()
            _wait_for_connections(engine.http, CAP - 1)
            late = MllpConnection(engine.mllp_port)  # a freed place is taken again
            assert msa(late.exchange(adt("LATE", "LATE")))[1] == "AA"
            late.close()
        finally:
            for client in clients:
                client.close()


def _wait_for_connections(http: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while f"portalbridge_mllp_connections {count}\n" not in httpx.get(f"{http}/metrics").text:
        assert time.monotonic() < deadline, f"the listener never held {count} connections"
        time.sleep(0.05)


def test_an_idle_connection_is_closed_while_a_busy_one_keeps_its_acks(
        database_url: str, rules_file: Path) -> None:
    limits = ListenerLimits(mllp_idle_timeout=1.0, mllp_read_timeout=1.0)
    with running_engine(database_url, rules_file, frozenset({"listen", "api"}), limits) as engine:
        idle = socket.create_connection(("127.0.0.1", engine.mllp_port), timeout=5)
        endless = socket.create_connection(("127.0.0.1", engine.mllp_port), timeout=5)
        endless.sendall(b"\x0b" + adt("ENDLESS", "E")[:40])  # a frame's start, never its end
        busy = MllpConnection(engine.mllp_port)
        started = time.monotonic()
        codes = []
        while time.monotonic() - started < 2.5:
            codes.append(msa(busy.exchange(adt(f"B{len(codes)}", "B")))[1])
            time.sleep(0.1)
        assert len(codes) >= 10 and set(codes) == {"AA"}
        assert idle.recv(100) == b"" and endless.recv(100) == b""  # both closed by now
        assert msa(busy.exchange(adt("LAST", "B")))[1] == "AA"
        for sock in (idle, endless):
            sock.close()
        busy.close()
