"""The composition root: the one module that wires the core to the edges.

Nothing is opened at import time; ``build_runtime`` opens the database and builds the core,
``run_components`` starts the listeners a process asked for and runs until told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from engine.audit import AuditLog
from engine.blocking import Background, touch_while_alive
from engine.broker import is_amqp_url, partition_queue
from engine.commands import Command, Outcome
from engine.committer import GroupCommitter
from engine.config import Settings
from engine.domain.clock import Clock, IdSource, RandomIds, SystemClock
from engine.enrollment_intake import EnrollmentIntake
from engine.errors import ConfigurationError, RejectedMessage, StoreUnavailable, TransientFailure
from engine.handlers import MessageBus
from engine.journal import JournalStore
from engine.journal_sweep import JournalSweep
from engine.journal_writer import JournalWriter
from engine.limits import check_command
from engine.member_effects import Effects, audit_member_event
from engine.member_handlers import MemberHandlers, MemberServices
from engine.metrics import EngineMetrics, serve_metrics
from engine.routing import Router
from engine.rules import RoutingRules, load_rules
from engine.runtime_metrics import RuntimeSources, watch_runtime
from engine.scheduler import Scheduler
from engine.sealing import journal_sealer
from engine.secretbox import AesGcmBox, NoKeyBox, load_key
from engine.shutdown import StopBudget, within
from engine.staff import StaffDirectory
from engine.store.audit import SqlAuditLog
from engine.store.database import is_sqlite, open_database
from engine.store.errors import classify_store_error
from engine.store.journal import PayloadPolicy, SqlJournalStore
from engine.store.member_queries import MemberQueries
from engine.store.migrate import pending_revision, upgrade
from engine.store.notification_rows import NotificationRows
from engine.store.sessions import SessionStore
from engine.store.sql_uow import SqlUnitOfWork, WriterConnection
from engine.store.staff import SqlStaffDirectory
from inbound.amqp_dispatch import PartitionDispatcher, patient_key
from inbound.amqp_worker import Hl7QueueWorker
from inbound.enrollment_queue import EnrollmentQueueConsumer
from inbound.fhir import explain_fhir
from inbound.hl7.explain import explain_hl7
from inbound.hl7.files import pieces_of
from inbound.hl7.receiver import Hl7Receiver
from inbound.hl7.strict import validate_structure
from inbound.http.app import create_app
from inbound.http.fhir import FhirDependencies
from inbound.http.limits import RequestLimits
from inbound.http.portal import PortalDependencies
from inbound.http.server import uvicorn_config
from inbound.http.workbench.membership_deps import MembershipHttp
from inbound.mllp_sender import Answer, FileToSend, MllpSender, SendFailed
from inbound.mllp_server import MllpLimits, MllpServer
from membership.passwords import Hashers, hashers_for
from membership.tokens import RandomSource, SecretBox, SystemRandom
from mpi.search import MpiSearch
from outbound.factory import build_relay
from outbound.metered import PublishCounts
from outbound.notify import build_sender, check_templates, count_templates
from outbound.notify.desk import LetterDesk
from outbound.notify.notifier import Notifier, NotifierPolicy
from outbound.outbox_admin import count_by_status, list_rows, oldest_pending
from outbound.outbox_admin import replay as replay_outbox
from outbound.relay import Relay, RelayPolicy
from outbound.tail import tail_events

__all__ = ["COMPONENTS", "RECEIVERS", "Runtime", "build_runtime", "check_notification_templates",
           "count_by_status", "dry_run", "explain_file", "hl7_receiver", "http_app",
           "journal_sweep", "letter_desk", "list_rows", "replay_outbox", "run_components",
           "scheduler", "send_hl7_files",
           "tail_events", "upgrade_database"]

log = logging.getLogger("portalbridge")

COMPONENTS = frozenset({"listen", "api", "relay", "worker", "enrollment", "notifier", "scheduler"})
#: Components that receive messages: their processes journal them and sweep the journal.
RECEIVERS = frozenset({"listen", "api", "worker"})


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
    staff: StaffDirectory
    audit: AuditLog
    members: MemberQueries
    box: SecretBox
    random: RandomSource
    hashers: Hashers
    intake: EnrollmentIntake
    pool: ThreadPoolExecutor  # slow hashing, never on the writer thread or the event loop
    sessions: SessionStore
    journal: JournalWriter
    messages: JournalStore
    metrics: EngineMetrics
    sources: RuntimeSources  # what /metrics reads when scraped
    bound_ports: dict[str, int] = field(default_factory=dict)
    decoy: str | None = None  # see ``decoy_hash``


def build_runtime(settings: Settings, *, rules: RoutingRules | None = None,
                  clock: Clock | None = None, ids: IdSource | None = None,
                  migrate_sqlite: bool = True, needs_key: bool = True) -> Runtime:
    """Load the rules, open the database (migrating an embedded SQLite file) and build the core.

    ``needs_key=False`` is for commands that never seal a secret or a journal payload: no key
    is read or made (a configured one is still checked).
    """
    rules = rules or load_rules(settings.config_path)
    database = _open_database(settings)
    _ensure_schema(database, migrate_sqlite)  # a database that cannot be opened says so first
    key = None
    if needs_key or settings.secret_key or settings.secret_key_file:
        key = load_key(settings.secret_key, settings.secret_key_file,
                       embedded=is_sqlite(database), folder=settings.working_folder)
    box: SecretBox = AesGcmBox(key) if key is not None else NoKeyBox()
    payloads = PayloadPolicy(rules.journal.payloads, journal_sealer(key))
    clock, ids, random = clock or SystemClock(), ids or RandomIds(), SystemRandom()
    policies, metrics = rules.membership.policies(), EngineMetrics()
    effects = Effects(ids=ids, box=box, publish=frozenset(rules.events.publish),
                      notify_password_change=policies.password.notify_on_change,
                      audit=audit_member_event)
    members = MemberHandlers(MemberServices(policies=policies, clock=clock, ids=ids, random=random,
                                            box=box, effects=effects, channels=rules.notifications,
                                            lockout=rules.membership.lockout.mechanisms()))
    journal = JournalWriter(enabled=rules.journal.enabled, observe=metrics.observe_entry)
    bus, writer = MessageBus(rules, clock, ids, members), WriterConnection(database)
    # SQLite takes one writer at a time; on PostgreSQL several writers overlap their waits.
    committer = GroupCommitter(
        bus, lambda check_inbox: SqlUnitOfWork(writer, check_inbox=check_inbox, box=box,
                                               clock=clock, journal=payloads),
        classify=classify_store_error, writers=1 if is_sqlite(database) else settings.writers,
        stall_seconds=settings.writer_stall_seconds, journal=journal,
        on_commit=metrics.observe_commit)
    sources = RuntimeSources(clock=clock, commits=committer.stats, journal=journal,
                             outbox_counts=lambda: count_by_status(database),
                             oldest_pending=lambda: oldest_pending(database),
                             notification_counts=NotificationRows(database).counts)
    watch_runtime(metrics, sources)
    hashers = hashers_for(policies.password, random)
    pool = ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 2), thread_name_prefix="hashing")
    return Runtime(settings=settings, rules=rules, database=database, clock=clock, ids=ids,
                   bus=bus, committer=committer, router=Router(rules),
                   search=MpiSearch(database.connect),
                   staff=SqlStaffDirectory(database, clock, ids), audit=SqlAuditLog(database, clock),
                   members=MemberQueries(database.connect), box=box, random=random,
                   hashers=hashers, intake=EnrollmentIntake(policies, hashers, random, pool),
                   pool=pool, sessions=SessionStore(database, random, policies.sessions),
                   journal=journal, messages=SqlJournalStore(database, payloads),
                   metrics=metrics, sources=sources)


def upgrade_database(settings: Settings) -> str:
    """``portalbridge db upgrade``: migrate to the latest revision; the database's URL."""
    database = _open_database(settings)
    try:
        upgrade(database)
        incomplete = pending_revision(database) is not None
    except SQLAlchemyError as exc:
        raise StoreUnavailable(_cannot_open(database, exc)) from None
    finally:
        database.dispose()
    if incomplete:  # pragma: no cover - Alembic raises rather than stopping short
        raise StoreUnavailable("the upgrade stopped before the latest schema revision")
    return database.url.render_as_string(hide_password=True)


def _open_database(settings: Settings) -> Engine:
    """The database of the settings, with their timeouts; a malformed URL is a clear error."""
    try:
        return open_database(settings.database_url, timeouts=settings.database_timeouts)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigurationError(f"PORTALBRIDGE_DATABASE_URL: {exc}") from None


def _ensure_schema(database: Engine, migrate_sqlite: bool) -> None:
    try:
        if is_sqlite(database) and migrate_sqlite:
            upgrade(database)
            return
        head = pending_revision(database)
    except SQLAlchemyError as exc:  # unreachable, missing, or not ours to open: one line
        raise StoreUnavailable(_cannot_open(database, exc)) from None
    if head is not None:
        raise ConfigurationError(
            f"the database schema is not at revision {head}: run `portalbridge db upgrade` first")


def _cannot_open(database: Engine, error: SQLAlchemyError) -> str:
    cause = getattr(error, "orig", None) or error
    reason = " ".join(str(cause).split("\n")[0].split()).removeprefix("connection failed: ")
    if is_sqlite(database) and "unable to open" in reason:
        reason += " (does its folder exist, and may this user write there?)"
    url = database.url.render_as_string(hide_password=True)
    return f"cannot open the database {url} (PORTALBRIDGE_DATABASE_URL): {reason}"


def readiness(runtime: Runtime) -> dict[str, bool | str]:
    """Each dependency of this process: True when it answers, else False or why not."""
    try:
        with runtime.database.connect() as conn:
            conn.execute(text("SELECT 1"))
        database_ok = True
    except Exception:  # noqa: BLE001 - any failure at all means "not ready"
        database_ok = False
    stall = runtime.committer.watchdog.problem()
    return {"database": database_ok, "committer": runtime.committer.alive, "writer": stall or True}


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside our event loop: we own the signals and the shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn releases
        return None


async def run_components(runtime: Runtime, components: frozenset[str], *,
                         stop: asyncio.Event | None = None,
                         on_ready: Callable[[Runtime], None] | None = None,
                         on_stopping: Callable[[], object] | None = None) -> None:
    """Run the asked-for components until ``stop`` is set (or SIGINT/SIGTERM), then stop
    them within ``shutdown_timeout`` seconds; ``on_stopping`` is called as stopping starts."""
    unknown = components - COMPONENTS
    if unknown:
        raise ConfigurationError(f"unknown component(s): {', '.join(sorted(unknown))}")
    stop = stop or _stop_on_signals()
    settings, rules = runtime.settings, runtime.rules
    runtime.committer.start()
    mllp: MllpServer | None = None
    http: _EmbeddedUvicorn | None = None
    http_task: asyncio.Task[None] | None = None
    jobs: list[Background] = []
    heartbeat: asyncio.Task[None] | None = None
    stop_metrics: Callable[[], None] | None = None
    try:
        jobs = _start_blocking(runtime, components, stop)
        heartbeat = _start_heartbeat(runtime, jobs, stop)
        if "listen" in components:
            receiver = hl7_receiver(runtime, "mllp")
            mllp = MllpServer(receiver.handle_frame, max_frame_bytes=rules.hl7.max_frame_bytes,
                              limits=_mllp_limits(settings))
            try:
                runtime.bound_ports["mllp"] = await mllp.start(settings.bind_host, settings.mllp_port)
            except OSError as exc:
                raise _cannot_listen("MLLP", settings.bind_host, settings.mllp_port, exc) from None
            runtime.sources.mllp = mllp
        if "api" in components:
            http, http_task = await _start_http(runtime)
        else:
            stop_metrics = _start_metrics_server(runtime)
        if on_ready is not None:
            on_ready(runtime)
        await stop.wait()
    finally:
        if on_stopping is not None:
            on_stopping()
        if stop_metrics is not None:
            stop_metrics()
        await _shut_down(runtime, http=http, http_task=http_task, mllp=mllp, jobs=jobs,
                         heartbeat=heartbeat)
    for job in jobs:
        if job.error is not None:
            raise job.error


def http_app(runtime: Runtime) -> FastAPI:
    """The HTTP API of this process: MPI search and the Workbench (staff tokens), FHIR (writes
    through the group committer), the message journal, metrics."""
    fhir = FhirDependencies(apply=runtime.committer.apply, rules=runtime.rules, ids=runtime.ids,
                            clock=runtime.clock, journal=runtime.journal)
    portal = PortalDependencies(apply=runtime.committer.apply, queries=runtime.members,
                                hashers=runtime.hashers, pool=runtime.pool,
                                policies=runtime.rules.membership.policies(), clock=runtime.clock,
                                sessions=runtime.sessions, search=runtime.search,
                                decoy_hash=decoy_hash(runtime))
    membership = MembershipHttp(apply=runtime.committer.apply, queries=runtime.members,
                                search=runtime.search, intake=runtime.intake, pool=runtime.pool,
                                audit=runtime.audit, clock=runtime.clock,
                                notifications=NotificationRows(runtime.database),
                                letters=letter_desk(runtime))
    limits = RequestLimits(max_header_bytes=runtime.settings.limits.http_max_header_bytes,
                           max_body_bytes=runtime.settings.limits.http_max_body_bytes,
                           fhir_max_body_bytes=runtime.rules.fhir.max_body_bytes,
                           body_timeout=runtime.settings.limits.http_request_timeout)
    return create_app(search=runtime.search, staff=runtime.staff, audit=runtime.audit,
                      clock=runtime.clock, ready=lambda: readiness(runtime), membership=membership,
                      metrics=runtime.metrics.exposition, version=package_version(),
                      fhir=fhir, messages=runtime.messages, limits=limits, portal=portal)


def decoy_hash(runtime: Runtime) -> str:
    """A hash of a random password with the preferred hasher (made once per process): what an
    unknown username is checked against, at the cost of a real one."""
    if runtime.decoy is None:
        runtime.decoy = runtime.hashers.hash(runtime.random.bytes(24).hex())
    return runtime.decoy


def _start_metrics_server(runtime: Runtime) -> Callable[[], None] | None:
    """``/metrics`` on ``PORTALBRIDGE_METRICS_PORT`` for a process without the HTTP API."""
    settings = runtime.settings
    if settings.metrics_port is None:
        return None
    try:
        port, stop = serve_metrics(runtime.metrics, settings.bind_host, settings.metrics_port)
    except OSError as exc:
        raise _cannot_listen("METRICS", settings.bind_host, settings.metrics_port, exc) from None
    runtime.bound_ports["metrics"] = port
    log.info("metrics on %s:%d", settings.bind_host, port)
    return stop


async def _start_http(runtime: Runtime) -> tuple[_EmbeddedUvicorn, asyncio.Task[None]]:
    settings = runtime.settings
    # uvicorn's records go through engine.logs (no logging config of its own); its chatter
    # only at DEBUG, and never the access log (URLs carry query strings).
    quiet = "debug" if settings.log_level == "DEBUG" else "warning"
    config = uvicorn_config(http_app(runtime), settings.limits, settings.bind_host,
                            settings.http_port, log_level=quiet)
    server = _EmbeddedUvicorn(config)
    # Bound here, so that a port in use is one clear line rather than uvicorn's exit.
    sock = _bound_socket("HTTP", runtime.settings.bind_host, runtime.settings.http_port)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start (port in use, ...)
            raise ConfigurationError("the HTTP server stopped while starting")
        await asyncio.sleep(0.01)
    runtime.bound_ports["http"] = server.servers[0].sockets[0].getsockname()[1]
    log.info("HTTP API on %s://%s:%d", "https" if config.is_ssl else "http", settings.bind_host,
             runtime.bound_ports["http"])
    return server, task


def _mllp_limits(settings: Settings) -> MllpLimits:
    limits = settings.limits
    return MllpLimits(max_connections=limits.mllp_max_connections,
                      idle_timeout=limits.mllp_idle_timeout, read_timeout=limits.mllp_read_timeout,
                      connection_buffer_bytes=limits.mllp_connection_buffer_bytes,
                      total_buffer_bytes=limits.mllp_total_buffer_bytes)


def _bound_socket(what: str, host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise _cannot_listen(what, host, port, exc) from None
    return sock


def _cannot_listen(what: str, host: str, port: int, error: OSError) -> ConfigurationError:
    setting = f"PORTALBRIDGE_{what}_PORT"
    reason = os.strerror(error.errno) if error.errno else str(error)
    return ConfigurationError(f"cannot listen for {what} on {host}:{port}: {reason.lower()} "
                              f"(set {setting} to a free port, or stop what holds this one)")


def _start_blocking(runtime: Runtime, components: frozenset[str],
                    stop: asyncio.Event) -> list[Background]:
    """The relay and the queue worker run on threads; if one dies, the process stops."""
    loop = asyncio.get_running_loop()
    jobs: list[Background] = []
    if "relay" in components:
        jobs.append(Background("relay", _relay(runtime).run,
                               lambda _exc: loop.call_soon_threadsafe(stop.set)))
    if "worker" in components:
        jobs.append(Background("worker", _worker(runtime).run,
                               lambda _exc: loop.call_soon_threadsafe(stop.set)))
    if "enrollment" in components:
        consumer = EnrollmentQueueConsumer(runtime.settings.broker_url, runtime.intake,
                                           runtime.committer.submit)
        jobs.append(Background("enrollment", consumer.run,
                               lambda _exc: loop.call_soon_threadsafe(stop.set)))
    if "notifier" in components:
        jobs.append(Background("notifier", notifier(runtime).run,
                               lambda _exc: loop.call_soon_threadsafe(stop.set)))
    if "scheduler" in components:
        jobs.append(Background("scheduler", scheduler(runtime).run,
                               lambda _exc: loop.call_soon_threadsafe(stop.set)))
    if components & RECEIVERS:
        jobs.append(Background("journal-sweep", journal_sweep(runtime).run))
    for job in jobs:
        job.start()
    return jobs


def _relay(runtime: Runtime) -> Relay:
    settings = runtime.settings
    if settings.uses_embedded_broker:
        log.info("relay: in-process broker (PORTALBRIDGE_BROKER_URL=amqp://... for RabbitMQ); "
                 "`portalbridge events tail` shows the events")
    policy = RelayPolicy(batch_size=settings.relay_batch_size,
                         max_attempts=settings.relay_max_attempts)
    counts = PublishCounts()
    runtime.sources.relay_counts = lambda: asdict(counts)
    return build_relay(runtime.database, settings.broker_url, runtime.clock,
                       runtime.rules.events.source, policy, counts=counts,
                       observe_lag=runtime.metrics.observe_relay_lag)


def notifier(runtime: Runtime) -> Notifier:
    """The notifier of this process, delivering to ``PORTALBRIDGE_MAIL_URL``."""
    sender = build_sender(runtime.settings.mail_url, runtime.rules.notifications,
                          now=runtime.clock.now)
    rules = runtime.rules.notifications
    policy = NotifierPolicy(max_attempts=rules.max_attempts, retry_delay=rules.retry.delay)
    made = Notifier(runtime.database, sender, runtime.box, runtime.clock, policy)
    runtime.sources.notifier_counts = lambda: {"sent": made.sent, "failed": made.failed,
                                               "dead": made.dead}
    return made


def letter_desk(runtime: Runtime) -> LetterDesk:
    """The activation letters of this runtime (the Workbench's and ``letters --pending``)."""
    return LetterDesk(database=runtime.database, search=runtime.search, box=runtime.box,
                      audit=runtime.audit, rules=runtime.rules.notifications, clock=runtime.clock,
                      sends_passphrase=runtime.rules.membership.policies().passphrase.send_with_token)


def scheduler(runtime: Runtime) -> Scheduler:
    """The membership scheduler of this runtime (every ``PORTALBRIDGE_SCHEDULER_INTERVAL``)."""
    return Scheduler(queries=runtime.members, sessions=runtime.sessions, clock=runtime.clock,
                     password=runtime.rules.membership.policies().password,
                     submit=runtime.committer.submit, every=runtime.settings.scheduler_interval)


def _worker(runtime: Runtime) -> Hl7QueueWorker:
    settings = runtime.settings
    if not is_amqp_url(settings.broker_url):
        raise ConfigurationError("the worker consumes RabbitMQ queues: set "
                                 "PORTALBRIDGE_BROKER_URL=amqp://user:password@host:5672/vhost")
    handle = hl7_receiver(runtime, "amqp").handle_message
    partitions = settings.inbound_partitions
    if not partitions:
        return Hl7QueueWorker(settings.broker_url, handle)
    mine = sorted(settings.worker_partitions or range(partitions))
    rules, router = runtime.rules.hl7, runtime.router
    dispatcher = PartitionDispatcher(partitions, lambda body: patient_key(body, router, rules))
    return Hl7QueueWorker(settings.broker_url, handle, queues=[partition_queue(n) for n in mine],
                          dispatcher=dispatcher)


def hl7_receiver(runtime: Runtime, channel: str, *, reprocess_of: int | None = None) -> Hl7Receiver:
    """HL7 v2 in, for the MLLP listener, the queue worker and ``messages reprocess`` alike:
    read, routed, translated, answered and journaled on the writer thread, strict routes
    validated with hl7apy off it. ``channel`` names the journal's channel."""
    return Hl7Receiver(runtime.router, runtime.committer.apply, runtime.clock, runtime.rules.hl7,
                       validate=validate_structure, run_on_writer=runtime.committer.run,
                       channel=channel, journal=runtime.journal, reprocess_of=reprocess_of)


def journal_sweep(runtime: Runtime) -> JournalSweep:
    """The retention sweep of this runtime's journal (``journal.retention``)."""
    return JournalSweep(runtime.messages, runtime.clock, runtime.rules.journal.retention_period)


def _start_heartbeat(runtime: Runtime, jobs: list[Background],
                     stop: asyncio.Event) -> asyncio.Task[None] | None:
    path = runtime.settings.heartbeat_file
    if path is None:
        return None
    return asyncio.get_running_loop().create_task(touch_while_alive(
        path, lambda: runtime.committer.alive and all(job.alive for job in jobs), stop))


async def _shut_down(runtime: Runtime, *, http: _EmbeddedUvicorn | None,
                     http_task: asyncio.Task[None] | None, mllp: MllpServer | None,
                     jobs: list[Background], heartbeat: asyncio.Task[None] | None) -> None:
    """Stop in order, each step given what is left of the shutdown budget: a stuck writer or
    an unreachable broker is left behind (daemon threads) rather than waited for."""
    budget = StopBudget(runtime.settings.shutdown_timeout)
    log.info("stopping (at most %g s)", budget.timeout)
    left = budget.left
    if http is not None and http_task is not None:
        http.should_exit = True
        if not await within(asyncio.shield(http_task), left()):
            http.force_exit = True  # requests waiting for a stuck writer are not waited for
    if mllp is not None:
        await within(mllp.stop(), left())
    if heartbeat is not None:
        heartbeat.cancel()
    await asyncio.gather(*(asyncio.to_thread(job.stop, left()) for job in jobs))
    await asyncio.to_thread(runtime.committer.stop, left())


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    return stop


def dry_run(runtime: Runtime, command: Command) -> Outcome:
    """Apply ``command`` in a transaction that is rolled back: real effects, none kept."""
    check_command(command)
    try:
        with SqlUnitOfWork(runtime.database, clock=runtime.clock) as uow:
            runtime.bus.prefetch([command], uow)
            return runtime.bus.handle(command, uow)
    except Exception as exc:
        raise classify_store_error(exc) from exc


def explain_file(runtime: Runtime, raw: bytes) -> tuple[list[str], bool]:
    """``route explain`` for one file's bytes: a JSON object is FHIR, anything else HL7 v2."""
    if raw.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{"):
        return explain_fhir(raw, runtime.rules, lambda c: dry_run(runtime, c), runtime.search,
                            runtime.ids)
    return explain_hl7(raw, runtime.router, runtime.rules.hl7, lambda c: dry_run(runtime, c),
                       validate=validate_structure)


def send_hl7_files(paths: list[Path], host: str, port: int, *, connections: int, timeout: float,
                   attempts: int, on_message: Callable[[Answer], None],
                   on_total: Callable[[int], None]) -> tuple[list[Answer], int]:
    """``portalbridge send``: the files' messages over MLLP, exactly as stored; the answers,
    and how many messages there were."""
    files: list[FileToSend] = []
    for path in paths:
        try:
            files.append(FileToSend(path, pieces_of(path.read_bytes())))
        except OSError as exc:
            raise RejectedMessage(f"{path}: cannot read ({exc.strerror})") from None
    total = sum(len(p.headers) or 1 for f in files for p in f.pieces)
    on_total(total)
    sender = MllpSender(host, port, connections=connections, timeout=timeout, attempts=attempts,
                        on_message=on_message)
    try:
        return asyncio.run(sender.send(files)), total
    except SendFailed as exc:
        raise TransientFailure(str(exc)) from None


def check_notification_templates(rules: RoutingRules) -> tuple[int, list[str]]:
    """How many notification templates the configured locales use, and every problem
    rendering them (``portalbridge config check``)."""
    return count_templates(rules.notifications), check_templates(rules.notifications)
