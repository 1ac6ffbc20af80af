"""No patient data in any log line, at DEBUG, from any logger, whatever goes wrong.

Real ``portalbridge serve`` processes log at DEBUG (ours, SQLAlchemy, psycopg, uvicorn,
kombu, amqp: everything reaches the root logger) while messages whose names, birth dates,
addresses, phones, e-mails, SSNs and MRNs are unique marker strings go through every path
we can reach: stored (and published to RabbitMQ), refused (AR, FHIR 4xx), the database
dropped under the running engine (AE, 503, a failing search), the broker down for the relay,
and a database that cannot be reached at start. Then no line may hold a marker, and the
lines that prove each path was taken must be there.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text

from engine.store.database import open_database
from engine.store.migrate import upgrade
from engine.store.tables import outbox
from tests.conftest import POSTGRES_ADMIN_URL
from tests.e2e.conftest import PORTALBRIDGE, free_port, portalbridge
from tests.e2e.test_shutdown import accepts, stopwatch_sigterm, wait_for
from tests.fakes import TEST_SECRET_KEY
from tests.integration.conftest import amqp_url, rabbitmq_vhost
from tests.integration.engine_harness import MllpConnection, msa
from tests.integration.fhir_harness import CLINIC_TOKEN, FHIR_JSON, rules_yaml

__all__ = ["amqp_url", "rabbitmq_vhost"]  # fixtures shared with the integration tests

TAG = uuid.uuid4().hex[:8].upper()
MARKERS = {
    "family": f"QZFAM{TAG}", "given": f"QZGIV{TAG}", "street": f"QZSTREET{TAG}",
    "city": f"QZCITY{TAG}", "phone": f"55501{int(TAG, 16) % 100000:05d}",
    "email": f"qzmail{TAG.lower()}@example.org", "ssn": f"9{int(TAG, 16) % 10**8:08d}",
    "mrn": f"QZMRN{TAG}", "birth_hl7": "19130317", "birth_iso": "1913-03-17",
}


def adt(control: str, *, mrn: str = MARKERS["mrn"], birth: str = MARKERS["birth_hl7"],
        family: str = MARKERS["family"], facility: str = "GHH") -> bytes:
    m = MARKERS
    return (f"MSH|^~\\&|EMR|{facility}|PB|PB|20260101120000||ADT^A08^ADT_A01|{control}|P|2.5.1\r"
            f"PID|1||{mrn}^^^GHH^MR~{m['ssn']}^^^USSSA^SS||{family}^{m['given']}||{birth}|F|||"
            f"{m['street']}^^{m['city']}^MA^02134||^PRN^PH^^1^617^{m['phone']}~^NET^Internet^"
            f"{m['email']}|||||{m['ssn']}\r").encode()


def fhir_patient(**changes: object) -> dict[str, object]:
    m = MARKERS
    resource: dict[str, object] = {
        "resourceType": "Patient",
        "identifier": [{"system": "http://clinic.example.org/mrn", "value": m["mrn"]},
                       {"system": "http://hl7.org/fhir/sid/us-ssn", "value": m["ssn"]}],
        "name": [{"family": m["family"], "given": [m["given"]]}], "birthDate": m["birth_iso"],
        "address": [{"line": [m["street"]], "city": m["city"]}],
        "telecom": [{"system": "phone", "value": m["phone"]}, {"system": "email", "value": m["email"]}]}
    resource.update(changes)
    return resource


@pytest.fixture
def database_url() -> Iterator[str]:
    """A database of its own: this test drops it under the running engine."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"pb_logs_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = open_database(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    rules = tmp_path / "routing.yaml"
    rules.write_text(rules_yaml(clients=True), encoding="utf-8")
    base = {k: v for k, v in os.environ.items() if not k.startswith("PORTALBRIDGE_")}
    return {**base, "PORTALBRIDGE_DATABASE_URL": database_url, "PORTALBRIDGE_CONFIG": str(rules),
            "PORTALBRIDGE_MLLP_PORT": str(free_port()), "PORTALBRIDGE_HTTP_PORT": str(free_port()),
            "PORTALBRIDGE_LOG_LEVEL": "DEBUG", "PORTALBRIDGE_SHUTDOWN_TIMEOUT": "5",
            "PORTALBRIDGE_SECRET_KEY": TEST_SECRET_KEY}


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[tuple[MllpConnection, httpx.Client]]:
    with log.open("wb") as out:
        process = subprocess.Popen([*PORTALBRIDGE, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: accepts(int(env["PORTALBRIDGE_MLLP_PORT"]))
                     and accepts(int(env["PORTALBRIDGE_HTTP_PORT"])), "serve", log)
            mllp = MllpConnection(int(env["PORTALBRIDGE_MLLP_PORT"]))
            headers = {"Content-Type": FHIR_JSON, "Authorization": f"Bearer {CLINIC_TOKEN}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{env['PORTALBRIDGE_HTTP_PORT']}",
                              headers=headers, timeout=30) as http:
                yield mllp, http
            mllp.close()
            stopwatch_sigterm(process, log)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def refusals(mllp: MllpConnection, http: httpx.Client, round_: str) -> None:
    """Every refusal we can provoke, each carrying markers."""
    assert msa(mllp.exchange(adt(f"{round_}-DATE", birth=f"1913{MARKERS['family']}")))[1] == "AR"
    assert msa(mllp.exchange(adt(f"{round_}-NUL", family=f"{MARKERS['family']}\x00")))[1] == "AR"
    assert msa(mllp.exchange(adt(f"{round_}-LONG", mrn=MARKERS["mrn"] * 20)))[1] == "AR"
    assert msa(mllp.exchange(adt(f"{round_}-FAC", facility="NOWHERE")))[1] == "AR"
    mllp.send(b"MSH|^~\\&|" + MARKERS["family"].encode() + b"\rPID|broken")  # no MSH-9/10
    assert msa(mllp.receive())[1] == "AR"
    for body, status in ((fhir_patient(gender=MARKERS["family"]), 400),
                         (fhir_patient(name=[{"family": MARKERS["family"] + "\u0000"}]), 400),
                         (fhir_patient(identifier=[{"system": "urn:x", "value": MARKERS["mrn"] * 20}]), 422),
                         (fhir_patient(**{MARKERS["given"]: MARKERS["city"]}), 400)):
        assert http.post("/fhir/Patient", content=json.dumps(body)).status_code == status
    assert http.post("/fhir/Patient", content=b'{"name": "' + MARKERS["family"].encode()).status_code == 400
    port = int(str(http.base_url).rstrip("/").rsplit(":", 1)[1])
    raw_http(port, f"GET /mpi/patients?family={MARKERS['family']} HTTP/1.1 {MARKERS['given']}\r\n\r\n")
    mllp_garbage(mllp)


def raw_http(port: int, request: str) -> None:
    """Bytes that are not HTTP: uvicorn answers 400 and logs that it did."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request.encode())
        conn.recv(4096)


def mllp_garbage(mllp: MllpConnection) -> None:
    """Bytes outside an MLLP frame on a connection of its own: it is closed, and logged."""
    port = mllp.sock.getpeername()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"{MARKERS['family']} {MARKERS['ssn']}\r".encode())
        assert conn.recv(4096) == b""


def searches(http: httpx.Client, staff_token: str) -> list[int]:
    staff = {"Authorization": f"Bearer {staff_token}"}
    return [http.get("/mpi/patients", params={"identifier": f"GHH|{MARKERS['mrn']}"},
                     headers=staff).status_code,
            http.get("/mpi/patients", params={"family": MARKERS["family"],
                                              "birthdate": MARKERS["birth_iso"]}, headers=staff).status_code,
            http.get("/fhir/Patient", params={"identifier": f"urn:x|{MARKERS['mrn']}"}).status_code]


def staff_token(env: dict[str, str]) -> str:
    """A reader of the MPI, made as an operator would (``portalbridge staff add``)."""
    done = portalbridge("staff", "add", "log-test-reader", "--role", "Administrator",
                        "--reason", "log test", env=env)
    return done.stdout.strip().splitlines()[-1]


def drop(url: str) -> None:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def published(url: str) -> bool:
    database = open_database(url)
    with database.connect() as conn:
        done = conn.execute(select(func.count()).select_from(outbox)
                            .where(outbox.c.status != "pending")).scalar_one()
    database.dispose()
    return bool(done)


def test_no_marker_reaches_a_log_line(env: dict[str, str], amqp_url: str, tmp_path: Path) -> None:
    logs = {name: tmp_path / f"{name}.log" for name in ("broker-up", "broker-down", "no-database")}
    token = staff_token(env)
    # 1. Everything up: stored and published, refused, searched.
    with serving({**env, "PORTALBRIDGE_BROKER_URL": amqp_url}, logs["broker-up"]) as (mllp, http):
        assert msa(mllp.exchange(adt("UP-OK")))[1] == "AA"
        assert http.post("/fhir/Patient", content=json.dumps(fhir_patient())).status_code == 201
        refusals(mllp, http, "UP")
        assert searches(http, token) == [200, 200, 200]
        wait_for(lambda: published(env["PORTALBRIDGE_DATABASE_URL"]), "the relay", logs["broker-up"])
    # 2. The broker down for the relay, then the database dropped under the engine.
    broker_down = {**env, "PORTALBRIDGE_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}//"}
    with serving(broker_down, logs["broker-down"]) as (mllp, http):
        assert msa(mllp.exchange(adt("DOWN-OK", mrn=MARKERS["mrn"] + "2")))[1] == "AA"
        refusals(mllp, http, "DOWN")
        wait_for(lambda: "relay: broker unavailable" in logs["broker-down"].read_text(),
                 "the relay to miss the broker", logs["broker-down"])
        drop(env["PORTALBRIDGE_DATABASE_URL"])
        assert msa(mllp.exchange(adt("GONE-1", mrn=MARKERS["mrn"] + "3")))[1] == "AE"
        assert http.post("/fhir/Patient", content=json.dumps(fhir_patient())).status_code == 503
        assert searches(http, token) == [503, 503, 503]
        assert http.get("/readyz").status_code == 503
    # 3. A database that cannot be reached at start.
    unreachable = {**env, "PORTALBRIDGE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    done = portalbridge("serve", env=unreachable, check=False)
    logs["no-database"].write_text(done.stdout + done.stderr, encoding="utf-8")
    assert done.returncode != 0 and "error: cannot open the database" in done.stderr

    text_of = {name: path.read_text(encoding="utf-8", errors="replace") for name, path in logs.items()}
    for name, content in text_of.items():
        for kind, marker in MARKERS.items():
            leaks = [line for line in content.splitlines() if marker in line]
            assert not leaks, f"{kind} marker in the {name} log: {leaks[:3]}"
    everything = "\n".join(text_of.values())
    for evidence in ("AR ADT^A08 UP-DATE", "AR ADT^A08 UP-NUL", "AR ADT^A08 UP-FAC",
                     "refused 400 structure at Patient.(unknown element)", "refused 422 too-long",
                     "DEBUG amqp", "relay: broker unavailable", "WARNING psycopg",
                     "AE ADT^A08 GONE-1", "refused 503 transient", "unavailable for /mpi/patients",
                     "Invalid HTTP request received", "outside an MLLP frame"):
        assert evidence in everything, f"no {evidence!r} in the logs: a path was not taken"
