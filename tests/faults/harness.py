"""One run of the fault harness: the plan of faults, the processes, the load, the books."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from engine.store.database import open_database
from engine.store.tables import outbox
from tests.faults.books import Books, keep_books
from tests.faults.events import Subscriber
from tests.faults.feed import GIVE_UP, RULES, Tally, connections
from tests.faults.services import (
    PORTALBRIDGE,
    EngineProcess,
    Scratch,
    free_port,
    restart_postgresql,
    restart_rabbitmq,
)

#: One cycle of faults, as (seconds into the cycle, fault).
CYCLE = ((4.0, "kill -9 listen-a"), (9.0, "kill -9 relay"), (14.0, "restart rabbitmq"),
         (21.0, "restart postgresql"), (29.0, "kill -9 listen-b"))
CYCLE_SECONDS = 36.0
RESTARTS = {"restart rabbitmq", "restart postgresql"}
QUIET_TIMEOUT = 120.0  # seconds for the relay to publish everything after the load stops


@dataclass(frozen=True)
class Plan:
    """How long to feed, which faults when, how many patients."""

    cycles: int = 1
    restarts: bool = True  # False: only kill -9 and two listeners (the shared servers stay up)
    patients: int = 40

    @property
    def schedule(self) -> list[tuple[float, str]]:
        return [(n * CYCLE_SECONDS + at, fault) for n in range(self.cycles) for at, fault in CYCLE
                if self.restarts or fault not in RESTARTS]

    @property
    def load_seconds(self) -> float:
        return self.cycles * CYCLE_SECONDS


@dataclass
class World:
    """Everything one run starts, so that it can all be stopped."""

    scratch: Scratch
    folder: Path
    processes: dict[str, EngineProcess] = field(default_factory=dict)
    subscriber: Subscriber | None = None

    def env(self) -> dict[str, str]:
        rules = self.folder / "routing.yaml"
        rules.write_text(RULES)
        return {**os.environ, "PORTALBRIDGE_DATABASE_URL": self.scratch.database_url,
                "PORTALBRIDGE_BROKER_URL": self.scratch.amqp_url,
                "PORTALBRIDGE_CONFIG": str(rules), "PORTALBRIDGE_LOG_LEVEL": "WARNING"}

    def start(self) -> tuple[int, int]:
        env = self.env()
        subprocess.run([*PORTALBRIDGE, "db", "upgrade"], env=env, check=True, capture_output=True)
        self.subscriber = Subscriber(self.scratch.amqp_url)
        self.subscriber.start()
        ports = (free_port(), free_port())
        for name, port in zip(("listen-a", "listen-b"), ports, strict=True):
            self.processes[name] = EngineProcess(
                name, "listen", {**env, "PORTALBRIDGE_MLLP_PORT": str(port)},
                self.folder / f"{name}.log", port)
        self.processes["relay"] = EngineProcess("relay", "relay", env, self.folder / "relay.log")
        for process in self.processes.values():
            process.start()
        return ports

    def fault(self, name: str) -> None:
        if name.startswith("kill -9 "):
            process = self.processes[name.removeprefix("kill -9 ")]
            process.kill()
            time.sleep(0.5)
            process.start()
        elif name == "restart rabbitmq":
            restart_rabbitmq()
        elif name == "restart postgresql":
            restart_postgresql()
        else:
            raise ValueError(f"unknown fault {name!r}")

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
        if self.subscriber is not None:
            self.subscriber.close()


def run(plan: Plan, folder: Path, progress: Callable[[str], None] = print) -> Books:
    """Run ``plan`` on a scratch database and vhost; the books of the run."""
    world = World(Scratch.create(), folder)
    try:
        ports = world.start()
        tally, stop = Tally(), threading.Event()
        senders = connections(ports, plan.patients, tally, stop)
        for sender in senders:
            sender.start()
        timeline = _inflict(world, plan, progress)
        stop.set()
        for sender in senders:
            sender.join(GIVE_UP + 60)
        progress(f"{time.strftime('%X')} load stopped; waiting for the relay to publish everything")
        assert world.subscriber is not None
        _quiesce(world.scratch.database_url, world.subscriber)
        books = keep_books(world.scratch.database_url, tally, world.subscriber, plan.patients)
        books.violations += [f"sender {s.name} failed: {s.error!r}" for s in senders if s.error]
        books.notes = [f"{len(senders)} MLLP connections to 2 listeners, {plan.patients} patients "
                       f"(a NORTH and an EAST stream each), {plan.load_seconds:.0f} s of load, "
                       f"{world.subscriber.reconnects} subscriber reconnects", *timeline]
        return books
    finally:
        world.stop()
        world.scratch.drop()


def _inflict(world: World, plan: Plan, progress: Callable[[str], None]) -> list[str]:
    started = time.monotonic()
    timeline = []
    for at, name in plan.schedule:
        time.sleep(max(0.0, started + at - time.monotonic()))
        began = time.monotonic()
        world.fault(name)
        line = f"  {began - started:6.1f} s  {name} (back after {time.monotonic() - began:.1f} s)"
        timeline.append(line)
        progress(f"{time.strftime('%X')} {line.strip()}")
    time.sleep(max(0.0, started + plan.load_seconds - time.monotonic()))
    return timeline


def _quiesce(database_url: str, subscriber: Subscriber) -> None:
    """Until every outbox row is published and has arrived (or the time is up)."""
    engine = open_database(database_url)
    deadline = time.monotonic() + QUIET_TIMEOUT
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                pending = conn.execute(select(func.count()).select_from(outbox)
                                       .where(outbox.c.status != "sent")).scalar_one()
                total = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
            if not pending and len(subscriber.seen) >= total:
                time.sleep(1.0)  # late redeliveries still count as duplicates
                return
            time.sleep(0.5)
    finally:
        engine.dispose()
