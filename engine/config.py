"""Settings: the one place that reads the environment, once, with casts and clear errors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigurationError

__all__ = ["DatabaseTimeouts", "ListenerLimits", "Settings", "setting_names"]

DEFAULT_DATABASE_FILE = "portalbridge.db"
IN_PROCESS_BROKER = "memory://"
DEFAULT_MAIL_URL = "file://mail"  # one RFC 5322 file per message in ./mail
MAX_PARTITIONS = 256  # each partition is a quorum queue of its own
A_DAY = 86400.0  # no wait on the database is meant to be unbounded, or nearly so


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseTimeouts:
    """How long anything may wait on the database, in seconds (README, settings table).

    A unit of work that cannot get its locks within ``lock`` fails as a transient failure
    (AE, 503, requeue) instead of hanging; ``statement`` bounds any one statement and
    ``connect`` the opening of a connection. SQLite waits ``lock`` for its write lock.
    """

    statement: float = 30.0
    lock: float = 5.0
    connect: float = 5.0


_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerLimits:
    """What clients of the MLLP listener and the HTTP API may hold: connections, bytes, time.

    Defaults are safe for a listener exposed to a hospital network; each has a setting.
    """

    mllp_max_connections: int = 1000
    mllp_idle_timeout: float = 600.0  # s with nothing in flight and no byte received
    mllp_read_timeout: float = 60.0  # s from a frame's start block to its end block
    mllp_connection_buffer_bytes: int = 8 * _MIB  # queued frames + the unfinished one
    mllp_total_buffer_bytes: int = 256 * _MIB  # the same over all connections
    http_max_body_bytes: int = _MIB  # every route but /fhir (routing.yaml fhir.max_body_bytes)
    http_max_header_bytes: int = 16 * 1024  # request line and headers
    http_max_concurrency: int = 256  # open connections and requests in progress
    http_keepalive_timeout: int = 5  # s an idle keep-alive connection stays open
    http_request_timeout: float = 30.0  # s for a request's head, and again for its body
    tls_cert_file: Path | None = None  # HTTPS on the API when both files are set
    tls_key_file: Path | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> ListenerLimits:
        cert, key = env.get("PORTALBRIDGE_TLS_CERT_FILE"), env.get("PORTALBRIDGE_TLS_KEY_FILE")
        if bool(cert) != bool(key):
            raise ConfigurationError("PORTALBRIDGE_TLS_CERT_FILE and PORTALBRIDGE_TLS_KEY_FILE "
                                     "go together: set both for HTTPS, or neither")
        return cls(
            mllp_max_connections=_positive(env, "PORTALBRIDGE_MLLP_MAX_CONNECTIONS", 1000),
            mllp_idle_timeout=_seconds(env, "PORTALBRIDGE_MLLP_IDLE_TIMEOUT", 600.0),
            mllp_read_timeout=_seconds(env, "PORTALBRIDGE_MLLP_READ_TIMEOUT", 60.0),
            mllp_connection_buffer_bytes=_positive(
                env, "PORTALBRIDGE_MLLP_CONNECTION_BUFFER_BYTES", 8 * _MIB),
            mllp_total_buffer_bytes=_positive(env, "PORTALBRIDGE_MLLP_TOTAL_BUFFER_BYTES", 256 * _MIB),
            http_max_body_bytes=_positive(env, "PORTALBRIDGE_HTTP_MAX_BODY_BYTES", _MIB),
            http_max_header_bytes=_positive(env, "PORTALBRIDGE_HTTP_MAX_HEADER_BYTES", 16 * 1024),
            http_max_concurrency=_positive(env, "PORTALBRIDGE_HTTP_MAX_CONCURRENCY", 256),
            http_keepalive_timeout=_positive(env, "PORTALBRIDGE_HTTP_KEEPALIVE_TIMEOUT", 5),
            http_request_timeout=_seconds(env, "PORTALBRIDGE_HTTP_REQUEST_TIMEOUT", 30.0),
            tls_cert_file=Path(cert) if cert else None,
            tls_key_file=Path(key) if key else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Process settings (``PORTALBRIDGE_*``). Defaults run everything embedded."""

    database_url: str
    broker_url: str = IN_PROCESS_BROKER
    config_path: Path = Path("routing.yaml")
    mllp_port: int = 2575
    http_port: int = 8080
    bind_host: str = "127.0.0.1"
    log_level: str = "INFO"
    writers: int = 1  # writer threads of the group committer (PostgreSQL; SQLite has one)
    relay_max_attempts: int = 8  # refused publishes of one outbox row before it is dead
    relay_batch_size: int = 500  # outbox rows per claim (and per confirm window)
    heartbeat_file: Path | None = None  # touched while the process's components are alive
    secret_key: str | None = None  # 32 bytes, base64: seals tokens, notification secrets and
    #                                journal payloads (engine.secretbox, engine.sealing)
    secret_key_file: Path | None = None
    working_folder: Path = Path()  # where an embedded installation keeps its generated key
    metrics_port: int | None = None  # /metrics of a process that serves no HTTP API
    limits: ListenerLimits = field(default_factory=ListenerLimits)
    writer_stall_seconds: float = 30.0  # a writer busy longer on one group fails readiness
    shutdown_timeout: float = 10.0  # seconds from SIGTERM to exit, stuck or not
    scheduler_interval: float = 60.0  # seconds between the membership scheduler's passes
    #: Where notifications go: file://FOLDER, smtp://..., smtps://... It may hold the SMTP
    #: password, so it is left out of the settings' repr.
    mail_url: str = field(default=DEFAULT_MAIL_URL, repr=False)
    database_timeouts: DatabaseTimeouts = DatabaseTimeouts()
    #: Partition queues of the AMQP inbound path (0: the one ordered queue, no partitions).
    inbound_partitions: int = 0
    #: The partitions this worker consumes; None: all of them.
    worker_partitions: frozenset[int] | None = None

    @property
    def uses_embedded_broker(self) -> bool:
        return self.broker_url.startswith("memory://")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None,
                         cwd: Path | None = None) -> Settings:
        env = os.environ if environ is None else environ
        folder = cwd or Path.cwd()
        return cls(
            database_url=_url(env, "PORTALBRIDGE_DATABASE_URL", _DATABASE_SCHEMES)
            or f"sqlite:///{folder / DEFAULT_DATABASE_FILE}",
            broker_url=_url(env, "PORTALBRIDGE_BROKER_URL", _BROKER_SCHEMES) or IN_PROCESS_BROKER,
            config_path=Path(env.get("PORTALBRIDGE_CONFIG") or folder / "routing.yaml"),
            mllp_port=_port(env, "PORTALBRIDGE_MLLP_PORT", 2575),
            http_port=_port(env, "PORTALBRIDGE_HTTP_PORT", 8080),
            bind_host=env.get("PORTALBRIDGE_BIND_HOST") or "127.0.0.1",
            log_level=(env.get("PORTALBRIDGE_LOG_LEVEL") or "INFO").upper(),
            writers=_positive(env, "PORTALBRIDGE_WRITERS", 1),
            relay_max_attempts=_positive(env, "PORTALBRIDGE_RELAY_MAX_ATTEMPTS", 8),
            relay_batch_size=_positive(env, "PORTALBRIDGE_RELAY_BATCH_SIZE", 500),
            heartbeat_file=Path(env["PORTALBRIDGE_HEARTBEAT_FILE"])
            if env.get("PORTALBRIDGE_HEARTBEAT_FILE") else None,
            secret_key=env.get("PORTALBRIDGE_SECRET_KEY") or None,
            secret_key_file=Path(env["PORTALBRIDGE_SECRET_KEY_FILE"])
            if env.get("PORTALBRIDGE_SECRET_KEY_FILE") else None,
            working_folder=folder,
            metrics_port=_port(env, "PORTALBRIDGE_METRICS_PORT", 0) or None,
            limits=ListenerLimits.from_environment(env),
            writer_stall_seconds=_seconds(env, "PORTALBRIDGE_WRITER_STALL_SECONDS", 30.0),
            shutdown_timeout=_seconds(env, "PORTALBRIDGE_SHUTDOWN_TIMEOUT", 10.0),
            scheduler_interval=_seconds(env, "PORTALBRIDGE_SCHEDULER_INTERVAL", 60.0),
            mail_url=env.get("PORTALBRIDGE_MAIL_URL") or DEFAULT_MAIL_URL,
            database_timeouts=DatabaseTimeouts(
                statement=_seconds(env, "PORTALBRIDGE_DB_STATEMENT_TIMEOUT", 30.0, below=A_DAY),
                lock=_seconds(env, "PORTALBRIDGE_DB_LOCK_TIMEOUT", 5.0, below=A_DAY),
                connect=_seconds(env, "PORTALBRIDGE_DB_CONNECT_TIMEOUT", 5.0, below=A_DAY)),
            **_partitioning(env),
        )


#: URL schemes each setting accepts, and what to write instead of anything else.
_DATABASE_SCHEMES = (("sqlite", "postgresql", "postgresql+psycopg", "postgres"),
                     "sqlite:///FILE or postgresql://USER@HOST:5432/DATABASE")
_BROKER_SCHEMES = (("memory", "amqp", "amqps", "pyamqp"), "memory:// or amqp://USER:PASSWORD@HOST:5672/VHOST")


def _url(env: Mapping[str, str], name: str, accepted: tuple[tuple[str, ...], str]) -> str:
    raw = env.get(name) or ""
    if raw:
        scheme, colon, _ = raw.partition(":")
        if not colon or scheme.lower() not in accepted[0]:
            raise ConfigurationError(f"{name}: unsupported URL scheme '{scheme if colon else raw}' "
                                     f"(use {accepted[1]})")
    return raw


class _Recorder(dict[str, str]):
    """An empty environment that remembers which names were looked up."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.append(key)
        return default

    def __getitem__(self, key: str) -> str:
        self.asked.append(key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        self.asked.append(str(key))
        return False


def setting_names() -> tuple[str, ...]:
    """Every environment variable ``Settings.from_environment`` reads, in the order read."""
    recorder = _Recorder()
    Settings.from_environment(recorder, Path("."))
    return tuple(dict.fromkeys(recorder.asked))


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}: {raw!r} is not a whole number") from None
    if value < 1:
        raise ConfigurationError(f"{name}: {value} must be at least 1")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float,
             below: float = float("inf")) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}: {raw!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise ConfigurationError(f"{name}: {raw} must be a positive number of seconds")
    if value >= below:
        raise ConfigurationError(f"{name}: {raw} must be less than {below:.0f} seconds "
                                 "(every wait is bounded)")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}: {raw!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"{name}: {port} is outside 0-65535")
    return port

def _partitioning(env: Mapping[str, str]) -> dict[str, Any]:
    """``inbound_partitions`` and ``worker_partitions`` (the ones this worker applies; None:
    all of them)."""
    raw = env.get("PORTALBRIDGE_INBOUND_PARTITIONS")
    partitions = int(raw) if raw and raw.isdigit() else None
    if raw and partitions is None:
        raise ConfigurationError(f"PORTALBRIDGE_INBOUND_PARTITIONS: {raw!r} is not a whole number")
    partitions = partitions or 0
    if partitions > MAX_PARTITIONS:
        raise ConfigurationError(f"PORTALBRIDGE_INBOUND_PARTITIONS: {partitions} is more than "
                                 f"{MAX_PARTITIONS}")
    chosen = env.get("PORTALBRIDGE_WORKER_PARTITIONS")
    if not chosen:
        return {"inbound_partitions": partitions, "worker_partitions": None}
    if partitions == 0:
        raise ConfigurationError("PORTALBRIDGE_WORKER_PARTITIONS is set but "
                                 "PORTALBRIDGE_INBOUND_PARTITIONS is not: set both")
    return {"inbound_partitions": partitions,
            "worker_partitions": _partition_list(chosen, partitions)}


def _partition_list(raw: str, partitions: int) -> frozenset[int]:
    """``"0,2"`` or ``"0-3,6"`` -> the partition numbers, each below ``partitions``."""
    chosen: set[int] = set()
    for part in raw.replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if not first.isdigit() or not (last.isdigit() or not last):
            raise ConfigurationError(f"PORTALBRIDGE_WORKER_PARTITIONS: {raw!r} is not a list "
                                     "like 0,2 or 0-3")
        chosen.update(range(int(first), int(last or first) + 1))
    beyond = sorted(n for n in chosen if n >= partitions)
    if beyond or not chosen:
        raise ConfigurationError(f"PORTALBRIDGE_WORKER_PARTITIONS: partitions {beyond or raw} do "
                                 f"not exist (PORTALBRIDGE_INBOUND_PARTITIONS={partitions}: 0-"
                                 f"{partitions - 1})")
    return frozenset(chosen)
