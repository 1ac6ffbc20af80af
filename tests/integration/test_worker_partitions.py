"""Three `portalbridge worker` processes on three partitions of the inbound HL7 queue.

Messages of 24 patients, five per patient, are published to ``portalbridge.inbound.hl7``
in one stream. Each worker moves (one at a time: the entry queue has a single active
consumer) and applies (only its own partition) messages; per patient they must be applied,
and their events published, in the order they were sent.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from engine.broker import HL7_QUEUE, SEQUENCE_HEADER, partition_of, partition_queue
from mpi.rows import patient_from_row
from mpi.tables import patients
from tests.e2e.conftest import PORTALBRIDGE
from tests.fakes import TEST_SECRET_KEY
from tests.integration.conftest import rabbitmqctl
from tests.integration.engine_harness import adt, msa
from tests.integration.relay_support import Downstream

PARTITIONS = 3
PATIENTS = 24
UPDATES = 4  # A08s after each patient's A04


def mrn(patient: int) -> str:
    return f"MRN-P{patient:02d}"


def control_id(patient: int, step: int) -> str:
    return f"P{patient:02d}-{step}"


@pytest.fixture
def processes(pg_engine: Engine, postgres_url: str, amqp_url: str, rules_file: Path,
              tmp_path: Path, downstream: Downstream) -> Iterator[dict[str, Path]]:
    """Three workers, one partition each, and a relay; their logs by name."""
    env = {**os.environ, "PORTALBRIDGE_DATABASE_URL": postgres_url,
           "PORTALBRIDGE_BROKER_URL": amqp_url, "PORTALBRIDGE_CONFIG": str(rules_file),
           "PORTALBRIDGE_INBOUND_PARTITIONS": str(PARTITIONS), "PORTALBRIDGE_LOG_LEVEL": "DEBUG",
           "PORTALBRIDGE_SECRET_KEY": TEST_SECRET_KEY}
    logs = {f"worker-{n}": tmp_path / f"worker-{n}.log" for n in range(PARTITIONS)}
    logs["relay"] = tmp_path / "relay.log"
    running = []
    for name, log in logs.items():
        command, extra = ("relay", {}) if name == "relay" else (
            "worker", {"PORTALBRIDGE_WORKER_PARTITIONS": name.removeprefix("worker-")})
        with log.open("wb") as out:
            running.append(subprocess.Popen([*PORTALBRIDGE, command], env={**env, **extra},
                                            stdout=out, stderr=subprocess.STDOUT))
    try:
        for number in range(PARTITIONS):
            downstream.wait_for_consumer(partition_queue(number), timeout=60)
        yield logs
    finally:
        for process in running:
            process.terminate()
        for process in running:
            process.wait(30)


def consumers(vhost: str) -> dict[str, list[bool]]:
    """Queue -> the ``active`` flag of each of its consumers."""
    listed = json.loads(rabbitmqctl("list_consumers", "-p", vhost, "queue_name", "active",
                                    "--formatter", "json"))
    found: dict[str, list[bool]] = defaultdict(list)
    for consumer in listed:
        found[consumer["queue_name"]].append(consumer["active"])
    return found


def test_three_workers_on_three_partitions_keep_each_patients_order(
        processes: dict[str, Path], downstream: Downstream, rabbitmq_vhost: str,
        pg_engine: Engine) -> None:
    expected = {p: partition_of(f"GHH|GHH|{mrn(p)}", PARTITIONS) for p in range(PATIENTS)}
    assert set(expected.values()) == set(range(PARTITIONS))  # every partition has patients
    events = downstream.bind("mpi.changed")
    replies = downstream.reply_queue()
    for step in range(UPDATES + 1):  # patients take turns: A04s, then each round of A08s
        for patient in range(PATIENTS):
            trigger = "A04" if step == 0 else "A08"
            body = adt(control_id(patient, step), mrn(patient), family=f"V{step}", trigger=trigger)
            downstream.publish(HL7_QUEUE, body, reply_to=replies,
                               correlation_id=control_id(patient, step))
    answers = downstream.take(replies, PATIENTS * (UPDATES + 1), timeout=120)
    assert len(answers) == PATIENTS * (UPDATES + 1)
    assert {msa(a.body)[1] for a in answers} == {"AA"}

    with pg_engine.connect() as conn:  # the last message of each patient is what is stored
        families = {patient_from_row(row).best.names[0].family
                    for row in conn.execute(select(patients)).mappings()}
    assert families == {f"V{UPDATES}"}
    received = downstream.take(events, PATIENTS * (UPDATES + 1), timeout=60)
    by_subject: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for event in received:
        new_family = event.event["data"]["changes"]["names"]["new"][0]["family"]
        by_subject[event.event["subject"]].append((event.headers[SEQUENCE_HEADER], new_family))
    assert len(by_subject) == PATIENTS
    in_order = [(n + 1, f"V{n}") for n in range(UPDATES + 1)]
    assert all(seen == in_order for seen in by_subject.values()), by_subject

    active = consumers(rabbitmq_vhost)
    for number in range(PARTITIONS):
        assert active[partition_queue(number)] == [True]  # one worker per partition
    assert sorted(active[HL7_QUEUE]) == [False, False, True]  # one mover at a time
    for number in range(PARTITIONS):  # and each worker applied its own partition's patients
        applied = re.findall(r"applied ADT\^A0[48] P(\d\d)-\d", processes[f"worker-{number}"].read_text())
        assert applied, f"worker-{number} applied nothing"
        assert {expected[int(patient)] for patient in applied} == {number}
