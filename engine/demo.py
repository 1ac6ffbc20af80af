"""``portalbridge demo``: the engine's main job end to end, on embedded defaults.

It starts the MLLP listener and the HTTP API on a scratch SQLite database, sends the bundled
sample feed through a real TCP connection as an EMR would, prints every acknowledgement,
then asks the HTTP API for the resulting patient index records with a staff token it makes
for itself (as ``portalbridge staff add`` would). The feed's A04 with an e-mail enrolls its
patient automatically (request queue, in-process); the demo reads the activation code from the
mail file, activates the account over HTTP, and shows the audit log. Last, it sets up a FHIR
client as an operator would (``portalbridge fhir token``) and writes and reads a Patient with
its token, after showing that a request without one is refused.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from engine.audit import AuditEntry
from engine.background import EngineThread
from engine.bootstrap import Runtime, build_runtime
from engine.cli_staff import cli_actor
from engine.config import Settings
from engine.demo_membership import show_membership
from engine.rules import FhirClient, load_rules, new_client_token
from engine.staff import Role

__all__ = ["run_demo"]


def run_demo(settings: Settings, *, keep: bool = False) -> int:
    folder = Path(tempfile.mkdtemp(prefix="portalbridge-demo-"))
    samples = resources.files("engine") / "samples"
    config = settings.config_path if settings.config_path.exists() else Path(str(samples / "routing.yaml"))
    demo_settings = replace(settings, database_url=f"sqlite:///{folder / 'portalbridge.db'}",
                            mllp_port=0, http_port=0, bind_host="127.0.0.1", config_path=config,
                            working_folder=folder, mail_url=f"file://{folder / 'mail'}")
    print(f"portalbridge demo: rules {config}, database {folder / 'portalbridge.db'}")
    fhir_token, client_line = new_client_token("demo-emr", "NORTH")
    rules = load_rules(config)
    client = FhirClient.model_validate(yaml.safe_load(client_line)[0])
    rules = rules.model_copy(update={"fhir": rules.fhir.model_copy(
        update={"clients": (*rules.fhir.clients, client)})})
    runtime = build_runtime(demo_settings, rules=rules)
    token = _demo_staff(runtime)
    server = EngineThread(runtime, frozenset({"listen", "api", "relay", "enrollment", "notifier"}))
    server.start()
    try:
        ports = server.wait_ready()
        mllp, http = ports["mllp"], ports["http"]
        feed = (samples / "demo_feed.hl7").read_bytes()
        _send_feed(feed, mllp)
        _show_patients(http, token)
        show_membership(http, token, folder / "mail")
        _show_audit(http, token)
        _fhir_with_a_token(http, fhir_token, client_line)
    finally:
        server.shutdown()
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def _demo_staff(runtime: Runtime) -> str:
    """A staff member for the demo's own HTTP requests: /mpi and /workbench need a token."""
    roles = frozenset({Role.MEMBER_ACCOUNT_MANAGER, Role.DIRECT_ENROLLMENT_USER})
    principal, token = runtime.staff.add("demo", roles)
    runtime.audit.append(AuditEntry(actor=cli_actor(), action="staff.add", outcome="success",
                                    reason="portalbridge demo",
                                    detail={"staff_id": principal.id, "name": principal.name}))
    print(f"staff member {principal.name!r} created for the demo's requests (roles: "
          f"{', '.join(sorted(roles))}); they send its token as 'Authorization: Bearer pbs_...'")
    return token


def _get_json(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - our own loopback URL
    with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 - our own loopback URL
        return json.load(reply)


def _send_feed(feed: bytes, port: int) -> None:
    print(f"\nsending the sample feed to MLLP port {port}:")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        for message in (m for m in feed.split(b"\n") if m.strip()):
            conn.sendall(b"\x0b" + message.strip(b"\r\n") + b"\r\x1c\r")
            ack = _read_frame(conn)
            print(f"  {_summary(message)} -> {_ack_summary(ack)}")


def _read_frame(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\x1c\r"):
        chunk = conn.recv(65536)
        if not chunk:
            raise RuntimeError("the listener closed the connection")
        data += chunk
    return data.strip(b"\x0b\x1c\r")


def _summary(message: bytes) -> str:
    fields = message.split(b"\r", 1)[0].decode().split("|")
    return f"{fields[8]:<22} {fields[9]:<11} from {fields[3]}"


def _ack_summary(ack: bytes) -> str:
    segments = {s[:3]: s.split("|") for s in ack.decode().split("\r") if s}
    msa = segments.get("MSA", [])
    padded = [*msa, "", "", "", ""]
    code, text = padded[1], padded[3]
    return f"{code} {text}".rstrip()


def _show_patients(port: int, token: str) -> None:
    base = f"http://127.0.0.1:{port}/mpi/patients"
    for label, query in (("identifier NGH|100234", {"identifier": "NGH|100234"}),
                         ("identifier NGH|100999 (merged away)", {"identifier": "NGH|100999"}),
                         ("family SAMPLE born 1984-03-12", {"family": "SAMPLE", "birthdate": "1984-03-12"})):
        body = _get_json(f"{base}?{urllib.parse.urlencode(query)}", token)
        print(f"\nGET /mpi/patients by {label}: {body['total']} patient(s)")
        for patient in body["patients"]:
            _print_patient(patient)


def _print_patient(patient: dict[str, Any]) -> None:
    best, where = patient["best_demographics"], patient["provenance"]
    name = best["names"][0] if best["names"] else {"given": [], "family": ""}
    print(f"  patient {patient['id']}  (best record: {patient['winner']['facility']}, "
          f"tier {patient['winner']['tier']})")
    print(f"    name      {' '.join(name['given'])} {name['family']}  [{where.get('names', '-')}]")
    print(f"    born      {best['birth_date']}  sex {best['sex']}  [{where.get('birth_date', '-')}]")
    for address in best["addresses"][:1]:
        lines = ", ".join(address["lines"])
        print(f"    address   {lines}, {address['city']}  [{where.get('addresses', '-')}]")
    for phone in best["phones"][:1]:
        print(f"    phone     {phone['value']}  [{where.get('phones', '-')}]")
    for email in best["emails"][:1]:
        print(f"    email     {email['value']}  [{where.get('emails', '-')}]")
    ids = ", ".join(f"{i['authority']}|{i['value']}" for i in patient["identifiers"])
    print(f"    ids       {ids}")
    for record in patient["source_records"]:
        state = "active" if record["active"] else f"merged into record {record['merged_into']}"
        print(f"    record    {record['facility']} {record['authority']}|{record['mrn']} ({state})")


_DEMO_PATIENT = {"resourceType": "Patient",
                 "identifier": [{"system": "NGH", "value": "100777", "type": {"coding": [
                     {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}}],
                 "name": [{"family": "FHIRSAMPLE", "given": ["ROBIN"]}], "birthDate": "1990-04-01"}


def _fhir_with_a_token(port: int, token: str, client_line: str) -> None:
    print("\nFHIR needs a client token. The demo made one as an operator would, with")
    print("  portalbridge fhir token demo-emr --facility NORTH")
    print("which prints the token (for the client) and the line for routing.yaml's fhir.clients:")
    print(f"  {client_line}")
    url = f"http://127.0.0.1:{port}/fhir/Patient"
    status, body = _fhir_request(url, _DEMO_PATIENT, token=None)
    print(f"POST /fhir/Patient without a token: {status} {body['issue'][0]['diagnostics']}")
    status, body = _fhir_request(url, _DEMO_PATIENT, token=token)
    print(f"POST /fhir/Patient with the token:  {status} Patient/{body['id']} "
          f"(facility NORTH, from the token)")
    status, body = _fhir_request(f"{url}/{body['id']}", None, token=token)
    print(f"GET  /fhir/Patient/{body['id']} with the token: {status} "
          f"{body['name'][0]['given'][0]} {body['name'][0]['family']}")


def _fhir_request(url: str, resource: dict[str, Any] | None, *, token: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(resource).encode() if resource is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - our own loopback URL
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 - our own loopback URL
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def _show_audit(port: int, token: str) -> None:
    body = _get_json(f"http://127.0.0.1:{port}/workbench/audit", token)
    print(f"\nGET /workbench/audit: {body['count']} entries, newest first")
    for entry in body["entries"]:
        patients = entry["detail"].get("patient_ids") or entry["patient_id"]
        about = f"patients {patients}" if patients else f"reason: {entry['reason'] or '-'}"
        print(f"  {entry['at'][:19]}  {entry['actor']:<18} {entry['action']:<11} "
              f"{entry['outcome']:<8} {about}")
