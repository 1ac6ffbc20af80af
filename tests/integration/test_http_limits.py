"""The HTTP API's bounds, on the real server (uvicorn as ``portalbridge api`` runs it).

These tests also pin what ``inbound.http.server`` relies on inside uvicorn (its h11 protocol
class and h11's connection state): if a uvicorn release changes either, the deadline tests
here fail. The limits do not depend on the database: SQLite only.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.config import ListenerLimits
from tests.integration.engine_harness import RunningEngine, running_engine

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

LIMITS = ListenerLimits(http_max_body_bytes=1024, http_max_header_bytes=4096,
                        http_max_concurrency=8, http_keepalive_timeout=1,
                        http_request_timeout=1.5)


@pytest.fixture
def engine(database_url: str, rules_file: Path) -> Iterator[RunningEngine]:
    with running_engine(database_url, rules_file, frozenset({"api"}), LIMITS) as running:
        yield running


def raw(engine: RunningEngine) -> socket.socket:
    return socket.create_connection(("127.0.0.1", engine.http_port), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_body_over_the_limit_is_413_on_every_route(engine: RunningEngine) -> None:
    declared = httpx.post(f"{engine.http}/mpi/patients", content=b"x" * 1025)
    assert declared.status_code == 413
    assert "PORTALBRIDGE_HTTP_MAX_BODY_BYTES" in declared.json()["detail"]
    chunked = httpx.post(f"{engine.http}/healthz", content=iter([b"x" * 700, b"y" * 700]))
    assert chunked.status_code == 413  # no Content-Length: counted as it arrives
    fhir = httpx.post(f"{engine.http}/fhir/Patient", content=b"{" + b" " * (1024 * 1024) + b"}",
                      headers={"Content-Type": "application/fhir+json"})
    assert fhir.status_code == 413
    outcome = fhir.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "fhir.max_body_bytes" in outcome["issue"][0]["diagnostics"]
    assert httpx.get(f"{engine.http}/healthz").status_code == 200


def test_headers_over_the_limit_are_refused_and_others_go_on(engine: RunningEngine) -> None:
    response = httpx.get(f"{engine.http}/healthz", headers={"X-Big": "b" * 5000})
    assert response.status_code == 431
    assert "PORTALBRIDGE_HTTP_MAX_HEADER_BYTES" in response.json()["detail"]
    slow = raw(engine)  # a head that arrives in pieces is bounded by h11's buffer
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    for _ in range(5):
        slow.sendall(b"X-Part: " + b"p" * 1000 + b"\r\n")
    assert read_all(slow).startswith(b"HTTP/1.1 400")
    slow.close()
    assert httpx.get(f"{engine.http}/healthz", headers={"X-Small": "s" * 100}).status_code == 200


def test_a_client_trickling_its_body_gets_408_and_does_not_delay_others(
        engine: RunningEngine) -> None:
    slow = raw(engine)
    slow.sendall(b"POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json"
                 b"\r\nContent-Length: 1000\r\n\r\n{")
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.1):
            try:
                slow.sendall(b" ")
            except OSError:
                return

    threading.Thread(target=trickle, daemon=True).start()
    try:
        started = time.monotonic()
        latencies = []
        while time.monotonic() - started < 1.2:
            began = time.monotonic()
            assert httpx.get(f"{engine.http}/healthz").status_code == 200
            latencies.append(time.monotonic() - began)
        assert max(latencies) < 0.5
        answer = read_all(slow)
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"did not arrive within 1.5 s" in answer
        assert time.monotonic() - started < 5
    finally:
        stop.set()
        slow.close()


def test_a_client_trickling_its_headers_is_closed_after_the_request_timeout(
        engine: RunningEngine) -> None:
    slow = raw(engine)
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    for _ in range(5):  # a header line every 0.2 s: never the end of the head
        slow.sendall(b"X-Slow: 1\r\n")
        time.sleep(0.2)
        assert httpx.get(f"{engine.http}/healthz").status_code == 200
    answer = read_all(slow)
    assert answer.startswith(b"HTTP/1.1 408") and 1.4 < time.monotonic() - started < 4
    slow.close()


def test_silent_connections_are_closed_and_the_concurrency_cap_answers_503(
        engine: RunningEngine) -> None:
    silent = [raw(engine) for _ in range(8)]  # as many as the cap, sending nothing
    time.sleep(0.1)
    assert httpx.get(f"{engine.http}/healthz").status_code == 503
    for sock in silent:  # closed after the keep-alive time (1 s), without an answer
        assert read_all(sock) == b""
        sock.close()
    assert httpx.get(f"{engine.http}/healthz").status_code == 200


def test_an_idle_keep_alive_connection_is_closed(engine: RunningEngine) -> None:
    sock = raw(engine)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    started = time.monotonic()
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200") and 0.9 < time.monotonic() - started < 3
    sock.close()


def test_the_api_serves_https_with_the_tls_settings(database_url: str, rules_file: Path,
                                                   tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    limits = ListenerLimits(tls_cert_file=cert, tls_key_file=key)
    with running_engine(database_url, rules_file, frozenset({"api"}), limits) as running:
        url = f"https://127.0.0.1:{running.http_port}/healthz"
        trusted = ssl.create_default_context(cafile=str(cert))
        assert httpx.get(url, verify=trusted).json() == {"status": "ok"}
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"http://127.0.0.1:{running.http_port}/healthz")  # plain HTTP is not served
