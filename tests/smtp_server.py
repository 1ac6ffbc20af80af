"""A real SMTP server for the tests: aiosmtpd on loopback, in its own thread.

Registered as a pytest plugin in ``tests/conftest.py``, so any test can ask for
``smtp_server``: it records every message it accepts (envelope and parsed message) and can be
told to refuse the next commands with a 4xx or 5xx reply, or to drop the connections it has
(as a server restart would). The server lives for the whole session; each test gets it empty.
Tests of two-factor codes reuse it to read the codes members receive.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["Received", "SmtpServer", "smtp_server"]

USERNAME, PASSWORD = "portal", "s3cret-smtp-password"


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    recipients: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def body(self, subtype: str) -> str:
        """The decoded text of the ``text/<subtype>`` part."""
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"no text/{subtype} part"
        return str(part.get_content())


@dataclass
class _Refusal:
    stage: str  # "MAIL", "RCPT" or "DATA"
    reply: str
    remaining: int


@dataclass
class _Handler:
    """aiosmtpd handler: records accepted messages, refuses on demand."""

    received: list[Received] = field(default_factory=list)
    refusals: list[_Refusal] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: int = 0

    def _refusal(self, stage: str) -> str | None:
        with self.lock:
            for refusal in self.refusals:
                if refusal.stage == stage and refusal.remaining > 0:
                    refusal.remaining -= 1
                    return refusal.reply
        return None

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        with self.lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        refused = self._refusal("MAIL")
        if refused:
            return refused
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        refused = self._refusal("RCPT")
        if refused:
            return refused
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refused = self._refusal("DATA")
        if refused:
            return refused
        assert isinstance(envelope.content, bytes)
        with self.lock:
            self.received.append(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos),
                                          envelope.content))
        return "250 Message accepted for delivery"


def _authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                  data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == USERNAME.encode() \
        and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    """The test server as tests see it."""

    def __init__(self, handler: _Handler, port: int) -> None:
        self._handler = handler
        self.host = "127.0.0.1"
        self.port = port
        self.controller = self._start()

    def _start(self) -> Controller:
        controller = Controller(self._handler, hostname=self.host, port=self.port,
                                authenticator=_authenticate, auth_require_tls=False)
        controller.start()
        return controller

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"smtp://{USERNAME}:{PASSWORD}@{self.host}:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self._handler.lock:
            return list(self._handler.received)

    @property
    def sessions(self) -> int:
        """How many SMTP sessions (EHLOs) the server has seen since the test began."""
        return self._handler.sessions

    def refuse(self, stage: str, reply: str, times: int = 1) -> None:
        """Answer the next ``times`` MAIL/RCPT/DATA commands with ``reply`` (e.g. "451 ...")."""
        with self._handler.lock:
            self._handler.refusals.append(_Refusal(stage, reply, times))

    def restart(self) -> None:
        """Stop and start again on the same port: open client connections are cut."""
        self.controller.stop()
        self.controller = self._start()

    def reset(self) -> None:
        with self._handler.lock:
            self._handler.received.clear()
            self._handler.refusals.clear()
            self._handler.sessions = 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def _smtp_server_session() -> Iterator[SmtpServer]:
    server = SmtpServer(_Handler(), _free_port())
    yield server
    server.controller.stop()


@pytest.fixture
def smtp_server(_smtp_server_session: SmtpServer) -> SmtpServer:
    """The session's SMTP server, emptied of messages and refusals from earlier tests."""
    _smtp_server_session.reset()
    return _smtp_server_session
