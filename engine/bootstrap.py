"""The composition root: the one module that wires the core to the edges.

Nothing is opened at import time; ``build_runtime`` opens the database and builds the core,
``run_components`` starts the listeners a process asked for and runs until told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

import uvicorn
from sqlalchemy import Connection, Engine, text

from engine.commands import Command, Outcome
from engine.committer import GroupCommitter
from engine.config import Settings
from engine.domain.clock import Clock, IdSource, RandomIds, SystemClock
from engine.errors import ConfigurationError
from engine.handlers import MessageBus
from engine.routing import Router
from engine.rules import RoutingRules, load_rules
from engine.store.database import is_sqlite, open_database
from engine.store.errors import classify_store_error
from engine.store.migrate import pending_revision, upgrade
from engine.store.sql_uow import SqlUnitOfWork
from inbound.hl7.explain import explain_hl7
from inbound.hl7.receiver import Hl7Receiver
from inbound.hl7.strict import validate_structure
from inbound.http.app import create_app
from inbound.mllp import MllpServer
from mpi.search import MpiSearch

__all__ = ["COMPONENTS", "Runtime", "build_runtime", "dry_run", "explain_file", "run_components"]

log = logging.getLogger("portalbridge")

COMPONENTS = frozenset({"listen", "api"})


def package_version() -> str:
    try:
        return version("portalbridge")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


@dataclass(slots=True)
class Runtime:
    """Everything one process shares: settings, rules, database and the core services."""

    settings: Settings
    rules: RoutingRules
    database: Engine
    clock: Clock
    ids: IdSource
    bus: MessageBus
    committer: GroupCommitter
    router: Router
    search: MpiSearch
    bound_ports: dict[str, int] = field(default_factory=dict)

    def connect(self) -> AbstractContextManager[Connection]:
        return self.database.connect()


def build_runtime(settings: Settings, *, rules: RoutingRules | None = None,
                  clock: Clock | None = None, ids: IdSource | None = None,
                  migrate_sqlite: bool = True) -> Runtime:
    """Load the rules, open the database (migrating an embedded SQLite file) and build the core."""
    rules = rules or load_rules(settings.config_path)
    database = open_database(settings.database_url)
    _ensure_schema(database, migrate_sqlite)
    clock, ids = clock or SystemClock(), ids or RandomIds()
    bus = MessageBus(rules, clock, ids)
    committer = GroupCommitter(bus, lambda: SqlUnitOfWork(database), classify=classify_store_error)
    return Runtime(settings=settings, rules=rules, database=database, clock=clock, ids=ids,
                   bus=bus, committer=committer, router=Router(rules),
                   search=MpiSearch(database.connect))


def _ensure_schema(database: Engine, migrate_sqlite: bool) -> None:
    if is_sqlite(database) and migrate_sqlite:
        upgrade(database)
        return
    head = pending_revision(database)
    if head is not None:
        raise ConfigurationError(
            f"the database schema is not at revision {head}: run `portalbridge db upgrade` first")


def readiness(runtime: Runtime) -> dict[str, bool]:
    """Each dependency of this process and whether it answers."""
    try:
        with runtime.database.connect() as conn:
            conn.execute(text("SELECT 1"))
        database_ok = True
    except Exception:  # noqa: BLE001 - any failure at all means "not ready"
        database_ok = False
    return {"database": database_ok, "committer": runtime.committer.alive}


def metrics_text(runtime: Runtime, mllp: MllpServer | None) -> str:
    stats = runtime.committer.stats
    lines = [
        "# TYPE portalbridge_commits_total counter", f"portalbridge_commits_total {stats.commits}",
        "# TYPE portalbridge_messages_committed_total counter",
        f"portalbridge_messages_committed_total {stats.messages}",
        "# TYPE portalbridge_commit_failures_total counter",
        f"portalbridge_commit_failures_total {stats.failures}",
        "# TYPE portalbridge_largest_commit_batch gauge",
        f"portalbridge_largest_commit_batch {stats.largest_batch}",
    ]
    if mllp is not None:
        lines += ["# TYPE portalbridge_mllp_connections gauge",
                  f"portalbridge_mllp_connections {len(mllp.connections)}"]
    return "\n".join(lines) + "\n"


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside our event loop: we own the signals and the shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn releases
        return None


async def run_components(runtime: Runtime, components: frozenset[str], *,
                         stop: asyncio.Event | None = None,
                         on_ready: Callable[[Runtime], None] | None = None) -> None:
    """Run the asked-for components until ``stop`` is set (or SIGINT/SIGTERM)."""
    unknown = components - COMPONENTS
    if unknown:
        raise ConfigurationError(f"unknown component(s): {', '.join(sorted(unknown))}")
    stop = stop or _stop_on_signals()
    settings, rules = runtime.settings, runtime.rules
    runtime.committer.start()
    mllp: MllpServer | None = None
    http: _EmbeddedUvicorn | None = None
    http_task: asyncio.Task[None] | None = None
    try:
        if "listen" in components:
            receiver = Hl7Receiver(runtime.router, runtime.committer.apply, runtime.clock,
                                   rules.hl7, validate=validate_structure)
            mllp = MllpServer(receiver.handle_frame, max_frame_bytes=rules.hl7.max_frame_bytes)
            runtime.bound_ports["mllp"] = await mllp.start(settings.bind_host, settings.mllp_port)
        if "api" in components:
            http, http_task = await _start_http(runtime, mllp)
        if on_ready is not None:
            on_ready(runtime)
        await stop.wait()
    finally:
        if http is not None and http_task is not None:
            http.should_exit = True
            await http_task
        if mllp is not None:
            await mllp.stop()
        await asyncio.to_thread(runtime.committer.stop)


async def _start_http(runtime: Runtime,
                      mllp: MllpServer | None) -> tuple[_EmbeddedUvicorn, asyncio.Task[None]]:
    app = create_app(search=runtime.search, ready=lambda: readiness(runtime),
                     metrics=lambda: metrics_text(runtime, mllp), version=package_version())
    config = uvicorn.Config(app, host=runtime.settings.bind_host, port=runtime.settings.http_port,
                            log_level="warning", access_log=False, lifespan="off")
    server = _EmbeddedUvicorn(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start (port in use, ...)
            raise ConfigurationError("the HTTP server stopped while starting")
        await asyncio.sleep(0.01)
    runtime.bound_ports["http"] = server.servers[0].sockets[0].getsockname()[1]
    log.info("HTTP API on %s:%d", runtime.settings.bind_host, runtime.bound_ports["http"])
    return server, task


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    return stop


def dry_run(runtime: Runtime, command: Command) -> Outcome:
    """Apply ``command`` in a transaction that is rolled back: real effects, none kept."""
    try:
        with SqlUnitOfWork(runtime.database) as uow:
            runtime.bus.prefetch([command], uow)
            return runtime.bus.handle(command, uow)
    except Exception as exc:
        raise classify_store_error(exc) from exc


def explain_file(runtime: Runtime, raw: bytes) -> tuple[list[str], bool]:
    """``route explain`` for one file's bytes."""
    return explain_hl7(raw, runtime.router, runtime.rules.hl7, lambda c: dry_run(runtime, c),
                       validate=validate_structure)
