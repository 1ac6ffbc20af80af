"""The message journal on real databases: what is kept, how, who reads it, how long.

Messages go through the running engine (MLLP listener, HTTP API, group committer) exactly as
a sender's would; the journal is then read back through its store, the raw table, the
Workbench routes and the ``portalbridge messages`` commands.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from engine.bootstrap import Runtime, build_runtime, journal_sweep
from engine.cli import main
from engine.config import Settings
from engine.journal import JournalEntry, JournalQuery
from engine.staff import Role
from engine.store.tables import audit_log, message_journal
from mpi.tables import source_records
from tests.conftest import TEST_RULES_YAML
from tests.fakes import TEST_SECRET_KEY
from tests.integration.engine_harness import MllpConnection, adt, msa, running_engine, staff_headers


def rules_file(folder: Path, **journal: object) -> Path:
    rules = yaml.safe_load(TEST_RULES_YAML)
    if journal:
        rules["journal"] = journal
    path = folder / f"routing-{'-'.join(map(str, journal.values())) or 'default'}.yaml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    return path


def rows(runtime: Runtime) -> list[dict[str, object]]:
    with runtime.database.connect() as conn:
        found = conn.execute(select(message_journal).order_by(message_journal.c.id))
        return [dict(row._mapping) for row in found]


def journal_of(runtime: Runtime, control_id: str) -> list[JournalEntry]:
    return [r.entry for r in runtime.messages.query(JournalQuery(control_id=control_id), payloads=True)]


def wait_until(condition: Callable[[], object], seconds: float = 10.0) -> None:
    """A refusal's entry is written just after its answer: wait for it."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> Iterator[Path]:
    """The environment ``portalbridge`` reads, for commands run through ``main``."""
    rules = rules_file(tmp_path)
    monkeypatch.setenv("PORTALBRIDGE_DATABASE_URL", database_url)
    monkeypatch.setenv("PORTALBRIDGE_CONFIG", str(rules))
    monkeypatch.setenv("PORTALBRIDGE_SECRET_KEY", TEST_SECRET_KEY)
    yield rules


def test_every_message_is_journaled_with_its_answer_and_its_payload_sealed_at_rest(
        database_url: str, tmp_path: Path) -> None:
    refused = adt("J-AR", "300").replace(b"ADT^A08^ADT_A01", b"ORU^R01^ORU_R01")
    with running_engine(database_url, rules_file(tmp_path)) as engine:
        mllp = MllpConnection(engine.mllp_port)
        applied_ack = mllp.exchange(adt("J-AA", "100", family="JOURNALFAMILY"))
        refused_ack = mllp.exchange(refused)
        garbage_ack = mllp.exchange(b"not hl7 at all")
        mllp.close()
        engine.runtime.committer.stop()  # every deferred entry is written by then
        runtime = engine.runtime
        [applied] = journal_of(runtime, "J-AA")
        [refusal] = journal_of(runtime, "J-AR")
        metrics = httpx.get(f"{engine.http}/metrics").text
    assert (applied.outcome, applied.channel, applied.sender) == ("AA", "mllp", "EMR^GHH")
    assert applied.payload == adt("J-AA", "100", family="JOURNALFAMILY")
    assert applied.response == applied_ack and msa(applied_ack)[1] == "AA"
    assert applied.effects["status"] == "applied" and applied.effects["events"] == 1
    assert applied.effects["patients"][0]["created"] is True
    assert (refusal.outcome, refusal.error_code, refusal.error_location) == ("AR", "200", "MSH-9")
    assert refusal.payload == refused and refusal.response == refused_ack
    stored = rows(runtime)
    assert len(stored) == 3 and {r["payload_form"] for r in stored} == {"encrypt"}
    unreadable = stored[-1]
    assert unreadable["outcome"] == "AR" and unreadable["error_code"] == "100"
    assert msa(garbage_ack)[1] == "AR"
    for row in stored:  # sealed: no patient data, not even the message's own header, at rest
        assert b"JOURNALFAMILY" not in row["payload"] and b"MSH|" not in row["payload"]
        assert b"MSA|" not in row["response"]
    assert 'portalbridge_inbound_messages_total{channel="mllp",code="AA"} 1.0' in metrics
    assert 'portalbridge_inbound_messages_total{channel="mllp",code="AR"} 2.0' in metrics
    assert 'portalbridge_refusals_total{channel="mllp",reason="200"} 1.0' in metrics
    assert "portalbridge_commit_group_size_bucket" in metrics


@pytest.mark.parametrize("payloads", ["keep", "omit"])
def test_payloads_are_kept_as_received_or_left_out_by_setting(
        database_url: str, tmp_path: Path, payloads: str) -> None:
    with running_engine(database_url, rules_file(tmp_path, payloads=payloads)) as engine:
        mllp = MllpConnection(engine.mllp_port)
        ack = mllp.exchange(adt("J-P", "101"))
        mllp.close()
        engine.runtime.committer.stop()
        [row] = rows(engine.runtime)
    assert row["payload_form"] == payloads and row["outcome"] == "AA"
    if payloads == "keep":
        assert row["payload"] == adt("J-P", "101") and row["response"] == ack
    else:
        assert row["payload"] is None and row["response"] is None
        assert row["effects"] and row["control_id"] == "J-P"  # what happened is still known


def test_a_disabled_journal_stores_nothing_and_still_counts(database_url: str, tmp_path: Path) -> None:
    with running_engine(database_url, rules_file(tmp_path, enabled=False)) as engine:
        mllp = MllpConnection(engine.mllp_port)
        mllp.exchange(adt("J-D", "102"))
        mllp.close()
        metrics = httpx.get(f"{engine.http}/metrics").text
        engine.runtime.committer.stop()
        assert rows(engine.runtime) == []
    assert 'portalbridge_inbound_messages_total{channel="mllp",code="AA"} 1.0' in metrics


def test_a_group_with_a_refused_message_journals_each_message_once(
        database_url: str, tmp_path: Path) -> None:
    unknown = adt("J-47", "X1", trigger="A47") + b"MRG|NOBODY^^^GHH^MR\r"
    messages = [adt(f"J-G{n}", f"20{n}") for n in range(6)] + [unknown]
    with running_engine(database_url, rules_file(tmp_path)) as engine:
        clients = [MllpConnection(engine.mllp_port) for _ in messages]
        for client, payload in zip(clients, messages, strict=True):  # together: few groups
            client.send(payload)
        codes = [msa(client.receive())[1] for client in clients]
        for client in clients:
            client.close()
        engine.runtime.committer.stop()
        stored = rows(engine.runtime)
    assert codes == [*["AA"] * 6, "AR"]
    assert sorted(r["control_id"] for r in stored) == sorted([f"J-G{n}" for n in range(6)] + ["J-47"])
    assert {r["control_id"]: r["outcome"] for r in stored}["J-47"] == "AR"


def test_the_workbench_lists_and_reads_messages_for_administrators_and_audits_each_read(
        database_url: str, tmp_path: Path) -> None:
    with running_engine(database_url, rules_file(tmp_path)) as engine:
        mllp = MllpConnection(engine.mllp_port)
        mllp.exchange(adt("J-W", "103").replace(b"ADT^A08^ADT_A01", b"ORU^R01^ORU_R01"))
        mllp.close()
        admin = staff_headers(engine.runtime, Role.ADMINISTRATOR)
        wait_until(lambda: engine.runtime.messages.query(JournalQuery(control_id="J-W")))
        listed = httpx.get(f"{engine.http}/workbench/messages",
                           params={"outcome": "AR", "since": "1h"}, headers=admin)
        assert listed.status_code == 200 and listed.json()["count"] == 1
        [summary] = listed.json()["messages"]
        assert "payload" not in summary and summary["control_id"] == "J-W"
        read = httpx.get(f"{engine.http}/workbench/messages/{summary['id']}", headers=admin)
        manager = httpx.get(f"{engine.http}/workbench/messages", headers=staff_headers(
            engine.runtime, Role.MEMBER_ACCOUNT_MANAGER))
        with engine.runtime.database.connect() as conn:
            audited = conn.execute(select(audit_log.c.action, audit_log.c.detail)
                                   .where(audit_log.c.action.like("messages.%"))).all()
    assert read.status_code == 200
    message = read.json()
    assert message["payload"].startswith("MSH|^~\\&|EMR|GHH|") and "\nPID|1||103" in message["payload"]
    assert "MSA|AR|J-W" in message["response"] and message["payloads"] == "encrypt"
    assert manager.status_code == 403
    assert [a for a, _ in audited] == ["messages.list", "messages.read"]
    assert f'"journal_id":"{summary["id"]}"' in audited[1][1]


def test_a_refused_message_is_reprocessed_once_routing_is_fixed_and_never_applied_twice(
        database_url: str, tmp_path: Path, cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refusing = yaml.safe_load(TEST_RULES_YAML)
    refusing["routes"].insert(0, {"match": {"message_type": "ADT", "trigger": "A08"},
                                  "action": "reject", "reason": "A08 not yet"})
    first_rules = tmp_path / "refusing.yaml"
    first_rules.write_text(yaml.safe_dump(refusing, sort_keys=False), encoding="utf-8")
    with running_engine(database_url, first_rules) as engine:
        mllp = MllpConnection(engine.mllp_port)
        assert msa(mllp.exchange(adt("J-R", "104")))[1] == "AR"
        mllp.close()
        engine.runtime.committer.stop()
        [refused] = engine.runtime.messages.query(JournalQuery(control_id="J-R"))
    # routing.yaml fixed (cli_env's rules accept A08): the same message, from the journal
    assert main(["messages", "reprocess", str(refused.id), "--reason", "A08 route added"]) == 0
    assert "MSA|AA|J-R" in capsys.readouterr().out
    assert main(["messages", "reprocess", str(refused.id), "--reason", "again"]) == 0
    assert "already committed; not applied again" in capsys.readouterr().out
    runtime = build_runtime(Settings(database_url=database_url, config_path=cli_env,
                                     secret_key=TEST_SECRET_KEY))
    try:
        reruns = runtime.messages.query(JournalQuery(reprocess_of=refused.id))
        with runtime.database.connect() as conn:
            records = conn.execute(select(func.count()).select_from(source_records)).scalar_one()
            actions = conn.execute(select(audit_log.c.action, audit_log.c.reason)).all()
    finally:
        runtime.database.dispose()
    assert [r.entry.outcome for r in reruns] == ["AA", "AA"]
    assert [r.entry.effects["status"] for r in reversed(reruns)] == ["applied", "duplicate"]
    assert records == 1
    assert ("messages.reprocess", "A08 route added") in actions


def test_messages_list_and_show_on_the_command_line(
        database_url: str, tmp_path: Path, cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_engine(database_url, cli_env) as engine:
        mllp = MllpConnection(engine.mllp_port)
        mllp.exchange(adt("J-C1", "105"))
        mllp.exchange(adt("J-C2", "106").replace(b"ADT^A08^ADT_A01", b"ORU^R01^ORU_R01"))
        mllp.close()
        engine.runtime.committer.stop()
    assert main(["messages", "list", "--outcome", "AR", "--since", "1h"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    fields = line.split("\t")
    assert fields[2:8] == ["mllp", "EMR^GHH", "J-C2", "ORU^R01", "AR", "200@MSH-9"]
    assert main(["messages", "show", "J-C1", "--sender", "EMR^GHH"]) == 0
    shown = capsys.readouterr().out
    assert "outcome     AA" in shown and "payload (encrypt):" in shown
    assert "  PID|1||105^^^GHH^MR||DOE^ANN||19800102|F" in shown and "  MSA|AA|J-C1" in shown
    assert main(["messages", "show", "NO-SUCH-ID"]) == 2
    assert main(["messages", "reprocess", "999999", "--reason", "typo"]) == 2


def test_the_retention_sweep_deletes_only_what_is_older_than_the_retention(
        database_url: str, tmp_path: Path, cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runtime = build_runtime(Settings(database_url=database_url, config_path=cli_env,
                                     secret_key=TEST_SECRET_KEY))
    now = runtime.clock.now()
    runtime.committer.start()
    for days in (45, 31, 29, 1):
        runtime.journal.defer(JournalEntry(channel="mllp", sender="EMR^GHH", control_id=f"old-{days}",
                                           message_type="ADT^A08", outcome="AA",
                                           received_at=now - timedelta(days=days)))
    runtime.committer.stop()
    try:
        assert journal_sweep(runtime).sweep() == 2
        kept = [r.entry.control_id for r in runtime.messages.query(JournalQuery())]
        assert main(["messages", "purge"]) == 0
        assert capsys.readouterr().out.startswith("0 journaled message(s) older than 30d deleted")
    finally:
        runtime.database.dispose()
    assert kept == ["old-1", "old-29"]


def test_a_listener_without_the_api_serves_metrics_on_its_own_port_and_sweeps_at_start(
        database_url: str, tmp_path: Path) -> None:
    rules = rules_file(tmp_path, retention="7d")
    old = build_runtime(Settings(database_url=database_url, config_path=rules,
                                 secret_key=TEST_SECRET_KEY))
    old.committer.start()
    old.journal.defer(JournalEntry(channel="mllp", sender="EMR^GHH", control_id="ancient",
                                   message_type="ADT^A08", outcome="AA",
                                   received_at=old.clock.now() - timedelta(days=8)))
    old.committer.stop()
    old.database.dispose()
    with running_engine(database_url, rules, frozenset({"listen", "relay"}), metrics_port=0) as engine:
        mllp = MllpConnection(engine.mllp_port)
        mllp.exchange(adt("J-M", "107"))
        port = engine.runtime.bound_ports["metrics"]
        deadline = time.monotonic() + 10
        while True:  # the relay publishes the event to the in-process broker
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            # (one scrape reads the lag histogram before the relay's counts: wait for both)
            done = "portalbridge_relay_published_total 1.0" in metrics and \
                "portalbridge_relay_lag_seconds_count 1.0" in metrics
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        mllp.close()
        engine.runtime.committer.stop()
        controls = [r.entry.control_id for r in engine.runtime.messages.query(JournalQuery())]
    assert 'portalbridge_inbound_messages_total{channel="mllp",code="AA"} 1.0' in metrics
    assert "portalbridge_relay_published_total 1.0" in metrics
    assert 'portalbridge_relay_results_total{result="unroutable"} 1.0' in metrics  # none bound
    assert "portalbridge_relay_lag_seconds_count 1.0" in metrics
    assert controls == ["J-M"]  # the 8-day-old entry went with the sweep at start


def test_text_no_database_stores_is_cleaned_so_an_entry_never_fails_its_commit(
        database_url: str, tmp_path: Path) -> None:
    with running_engine(database_url, rules_file(tmp_path, payloads="keep")) as engine:
        runtime = engine.runtime
        runtime.journal.defer(JournalEntry(
            channel="mllp", sender="EMR\x00^G\ud800H", control_id="NUL\x00" * 80,
            message_type="ADT^A08", outcome="AR", received_at=runtime.clock.now(),
            payload=b"MSH|^~\\&|EMR\x00|...", error_location="PID-\ud8005"))
        mllp = MllpConnection(engine.mllp_port)
        assert msa(mllp.exchange(adt("J-N", "108")))[1] == "AA"  # rides with, or after, it
        mllp.close()
        runtime.committer.stop()
        stored = {r["control_id"][:4]: r for r in rows(runtime)}
    cleaned = stored["NUL\ufffd"]
    assert cleaned["sender"] == "EMR\ufffd^G?H" and len(cleaned["control_id"]) == 200
    assert cleaned["error_location"] == "PID-?5" and cleaned["payload"] == b"MSH|^~\\&|EMR\x00|..."
    assert stored["J-N"]["outcome"] == "AA"
