"""Start the real engine (listener + API) on a real database for a test, and talk to it."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.background import EngineThread
from engine.bootstrap import Runtime, build_runtime
from engine.config import ListenerLimits, Settings
from engine.staff import Role
from inbound.mllp import MllpDecoder, frame
from tests.fakes import TEST_SECRET_KEY


@dataclass
class RunningEngine:
    runtime: Runtime
    mllp_port: int
    http_port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@contextmanager
def running_engine(database_url: str, rules_file: Path,
                   components: frozenset[str] = frozenset({"listen", "api"}),
                   limits: ListenerLimits | None = None,
                   **overrides: Any) -> Iterator[RunningEngine]:
    """The engine on a thread; ``overrides`` are further ``Settings`` fields."""
    settings = Settings(secret_key=TEST_SECRET_KEY, database_url=database_url,
                        config_path=rules_file, mllp_port=0, http_port=0,
                        limits=limits or ListenerLimits(), **overrides)
    runtime = build_runtime(settings)
    thread = EngineThread(runtime, components)
    thread.start()
    try:
        ports = thread.wait_ready()
        yield RunningEngine(runtime, ports.get("mllp", 0), ports.get("http", 0))
    finally:
        thread.shutdown()
        runtime.database.dispose()


def staff_headers(runtime: Runtime, *roles: Role) -> dict[str, str]:
    """Request headers with the token of a new staff member (Member Account Manager unless
    ``roles`` are given)."""
    _staff, token = runtime.staff.add(f"tester-{uuid.uuid4().hex[:8]}",
                                      frozenset(roles or {Role.MEMBER_ACCOUNT_MANAGER}))
    return {"Authorization": f"Bearer {token}"}


class MllpConnection:
    """A minimal MLLP client that reads whole frames (tests need several per message)."""

    def __init__(self, port: int, timeout: float = 15.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._decoder = MllpDecoder(16 * 1024 * 1024)
        self._frames: list[bytes] = []

    def send(self, payload: bytes) -> None:
        self.sock.sendall(frame(payload))

    def receive(self) -> bytes:
        while not self._frames:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the listener closed the connection")
            self._frames += [f for f in self._decoder.feed(data) if isinstance(f, bytes)]
        return self._frames.pop(0)

    def exchange(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.receive()

    def close(self) -> None:
        self.sock.close()


def msa(ack: bytes) -> list[str]:
    """The MSA fields of an acknowledgement: ['MSA', code, control id, text]."""
    for segment in ack.decode("latin-1").split("\r"):
        if segment.startswith("MSA"):
            return segment.split("|")
    raise AssertionError(f"no MSA segment in {ack!r}")


def adt(control_id: str, mrn: str, family: str = "DOE", facility: str = "GHH",
        trigger: str = "A08", extra_pid: str = "") -> bytes:
    return (f"MSH|^~\\&|EMR|{facility}|PB|PB|20260101120000||ADT^{trigger}^ADT_A01|{control_id}|P|2.5.1\r"
            f"EVN|{trigger}|20260101120000\r"
            f"PID|1||{mrn}^^^GHH^MR||{family}^ANN||19800102|F{extra_pid}\r").encode()
