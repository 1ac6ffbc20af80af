"""The MLLP listener against a real database: ACK after commit, concurrency, bad input."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from engine.store.tables import outbox
from mpi.tables import source_records
from tests.integration.engine_harness import MllpConnection, adt, msa, running_engine, staff_headers


def record_count(engine: object) -> int:
    with engine.runtime.database.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count()).select_from(source_records)).scalar_one())


def test_the_ack_follows_the_commit_and_a_resend_is_not_applied_twice(database_url: str,
                                                                     rules_file: Path) -> None:
    with running_engine(database_url, rules_file) as engine:
        client = MllpConnection(engine.mllp_port)
        assert msa(client.exchange(adt("C1", "100")))[1:3] == ["AA", "C1"]
        # The ACK has arrived, so the record must be readable by anyone, right now.
        assert record_count(engine) == 1
        assert msa(client.exchange(adt("C1", "100", family="CHANGED")))[1] == "AA"
        reply = httpx.get(f"{engine.http}/mpi/patients", params={"identifier": "GHH|100"},
                          headers=staff_headers(engine.runtime)).json()
        assert reply["patients"][0]["best_demographics"]["names"][0]["family"] == "DOE"
        with engine.runtime.database.connect() as conn:
            assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 1
        client.close()


def test_sixteen_connections_at_once_are_grouped_into_fewer_commits(database_url: str,
                                                                    rules_file: Path) -> None:
    results: dict[int, list[str]] = {}

    def sender(number: int, port: int) -> None:
        client = MllpConnection(port)
        results[number] = [msa(client.exchange(adt(f"K{number}-{i}", f"{number}-{i}")))[1] for i in range(25)]
        client.close()

    with running_engine(database_url, rules_file) as engine:
        threads = [threading.Thread(target=sender, args=(n, engine.mllp_port)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(codes == ["AA"] * 25 for codes in results.values()) and len(results) == 16
        assert record_count(engine) == 400
        stats = engine.runtime.committer.stats
        assert stats.messages == 400 and stats.commits < 400
        metrics = httpx.get(f"{engine.http}/metrics").text
        assert "portalbridge_messages_committed_total 400" in metrics
        assert f"portalbridge_commits_total {stats.commits}" in metrics
        assert "portalbridge_writer_busy_seconds_total " in metrics


def test_one_bad_message_in_a_group_does_not_cost_the_others(database_url: str, rules_file: Path) -> None:
    with running_engine(database_url, rules_file) as engine:
        setup = MllpConnection(engine.mllp_port)
        assert msa(setup.exchange(adt("S1", "A")))[1] == "AA"
        assert msa(setup.exchange(adt("S2", "B")))[1] == "AA"
        # A47 onto an identifier another record holds: refused by the index, inside a group.
        clash = adt("BAD", "B", trigger="A47").decode() + "MRG|A^^^GHH^MR\r"
        outcomes: dict[str, str] = {}

        def send(name: str, payload: bytes) -> None:
            client = MllpConnection(engine.mllp_port)
            outcomes[name] = msa(client.exchange(payload))[1]
            client.close()

        threads = [threading.Thread(target=send, args=(f"ok{n}", adt(f"G{n}", f"G{n}"))) for n in range(8)]
        threads.append(threading.Thread(target=send, args=("bad", clash.encode())))
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert outcomes.pop("bad") == "AR"
        assert set(outcomes.values()) == {"AA"} and len(outcomes) == 8
        assert record_count(engine) == 10


def test_a_framing_error_closes_only_its_own_connection(database_url: str, rules_file: Path) -> None:
    with running_engine(database_url, rules_file) as engine:
        good = MllpConnection(engine.mllp_port)
        bad = socket.create_connection(("127.0.0.1", engine.mllp_port), timeout=5)
        bad.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert bad.recv(100) == b""  # closed by the listener
        half = socket.create_connection(("127.0.0.1", engine.mllp_port), timeout=5)
        half.sendall(b"\x0bMSH|^~\\&|EMR|GHH|PB|PB|2026||ADT^A08|HALF|P|2.5\rPID|1||9^^^")
        half.close()  # gone in the middle of a message
        assert msa(good.exchange(adt("G1", "1")))[1] == "AA"
        good.close()


def test_an_oversize_frame_is_refused_and_the_connection_goes_on(database_url: str, rules_file: Path) -> None:
    with running_engine(database_url, rules_file) as engine:
        client = MllpConnection(engine.mllp_port)
        huge = adt("HUGE", "1") + b"NTE|1||" + b"x" * (5 * 1024 * 1024) + b"\r"
        reply = msa(client.exchange(huge))
        assert reply[1:3] == ["AR", "HUGE"] and "exceeds the limit" in reply[3]
        assert msa(client.exchange(adt("AFTER", "2")))[1] == "AA"
        client.close()


def test_latin1_declared_in_msh18_is_honoured(database_url: str, rules_file: Path) -> None:
    with running_engine(database_url, rules_file) as engine:
        client = MllpConnection(engine.mllp_port)
        message = adt("L1", "77", family="M\xfcller").decode("utf-8")
        message = message.replace("|P|2.5.1", "|P|2.5.1||||||8859/1")
        reply = client.exchange(message.encode("latin-1"))
        assert msa(reply)[1] == "AA"
        body = httpx.get(f"{engine.http}/mpi/patients", params={"identifier": "GHH|77"},
                         headers=staff_headers(engine.runtime)).json()
        assert body["patients"][0]["best_demographics"]["names"][0]["family"] == "M\u00fcller"
        client.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_database_down_is_ae_and_the_resend_succeeds(database_url: str, rules_file: Path) -> None:
    from sqlalchemy import create_engine, text

    from tests.conftest import POSTGRES_ADMIN_URL

    name = database_url.rsplit("/", 1)[1]
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with running_engine(database_url, rules_file) as engine:
        client = MllpConnection(engine.mllp_port)
        try:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  f"WHERE datname = '{name}'"))
            reply = msa(client.exchange(adt("DOWN", "5")))
            assert reply[1] == "AE" and "database" in reply[3]
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        assert msa(client.exchange(adt("DOWN", "5")))[1] == "AA"
        assert record_count(engine) == 1
        client.close()
    admin.dispose()
