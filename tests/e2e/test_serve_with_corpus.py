"""`portalbridge serve` as a subprocess, fed the public corpus by python-hl7's MLLP client.

python-hl7 is an independent implementation of MLLP: if our framing or ACKs were wrong for
other senders, its client would hang or return something unreadable here.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hl7.client import MLLPClient

from tests.e2e.conftest import ServeProcess, staff_token
from tests.unit.hl7.hl7_corpus import corpus_bytes, corpus_files

#: Expected MSA-1 codes per corpus file, in the order sent (files are sent in sorted order,
#: so later files see what earlier ones stored). Reviewed one by one; see SOURCES.md notes.
EXPECTED: dict[str, list[str]] = {
    "hapi-hl7v2/adt_a01_v24_doc_example.hl7": ["AA"],
    "hapi-hl7v2/adt_a03_structure_a05_v25_crlf.hl7": ["AA"],  # ignored trigger; NE/AL
    "hapi-hl7v2/adt_a03_v25_repeated_pid3.hl7": ["AA"],
    "hapi-hl7v2/adt_a04_v23_ail_segment.hl7": ["AA"],
    "hapi-hl7v2/adt_a06_v22_no_evn_no_pid.hl7": ["AA"],
    "hapi-hl7v2/adt_a08_v22_msh12_components.hl7": ["CR"],  # no PID; accept ack only (AL/NE)
    "hapi-hl7v2/adt_a08_v23_null_quotes.hl7": ["CA", "AA"],  # AL/AL: both acknowledgements
    "hapi-hl7v2/adt_a14_v22_zin.hl7": ["AA"],
    "hapi-hl7v2/adt_a17_v231_zsegments_interleaved.hl7": ["AA"],
    "hapi-hl7v2/adt_a17_v23_two_pid_no_evn_crlf.hl7": ["AA"],
    "hapi-hl7v2/adt_a31_v23_crlf_timezone.hl7": ["AR"],  # MSH-4 empty
    "hapi-hl7v2/adt_a31_v24_invalid_evn_date.hl7": ["AA"],  # EVN-2 is not read
    "hapi-hl7v2/adt_a45_v25_canadian_ids.hl7": ["AA"],
    "hapi-hl7v2/oru_r01_v24_msh3_escaped_field_sep.hl7": ["AR"],
    "hapi-hl7v2/ras_o17_v25_escape_F_unknown_segments.hl7": ["AR"],
    "hl7apy/adt_a01_v25_full.hl7": ["CA", "AA"],
    "hl7apy/adt_a01_v26_validation.hl7": ["CA", "AA"],  # same sender and MSH-10: a resend
    "hl7apy/custom_delimiters_bang_msh_only.hl7": ["AR"],
    "hl7apy/malformed_first_segment_pid_not_msh.hl7": ["AR"],
    "hl7apy/malformed_msh12_missing_version.hl7": ["AR"],
    "hl7apy/malformed_msh2_duplicate_encoding_chars.hl7": ["AR"],
    "hl7apy/malformed_msh2_three_encoding_chars_v27.hl7": ["AR"],
    "hl7apy/malformed_msh2_too_many_encoding_chars_v27.hl7": ["AR"],
    "hl7apy/malformed_msh9_incomplete_adt_caret.hl7": ["AR"],
    "hl7apy/malformed_msh9_missing_v26.hl7": ["AR"],
    "hl7apy/msh_escape_highlight_H_N.hl7": ["AR"],
    "hl7apy/rsp_k22_v27_truncation_char.hl7": ["AR"],
    "hl7apy/zdt_z01_v25_custom_message_type.hl7": ["CR", "AR"],
    "hl7apy/zin_segment_msh9_absent_v25.hl7": ["AR"],
    "lfh-hl7v2-fhir-converter/adt_a01_v26_bad_msh2_literal_backslash_r_crlf.hl7": ["AR"],
    "lfh-hl7v2-fhir-converter/adt_a03_v26_mixed_separators_full.hl7": ["AR"],
    "lfh-hl7v2-fhir-converter/adt_a28_v26_mixed_separators.hl7": ["AR"],
    "lfh-hl7v2-fhir-converter/adt_a31_v26_multi_insurance_lf.hl7": ["AR"],
    "lfh-hl7v2-fhir-converter/adt_a34_v23_evn_a40_no_msh7.hl7": ["AR"],
    "lfh-hl7v2-fhir-converter/adt_a34_v26_repeated_pd1.hl7": ["AR"],
    "lfh-hl7v2-fhir-converter/adt_a40_v26_lf_no_evn.hl7": ["AA"],
    "lfh-hl7v2-fhir-converter/adt_a40_v26_two_patient_groups.hl7": ["AA"],  # resend of the above id
    "ms-fhir-converter/adt_a01_v251_everyman_bom.hl7": ["AA"],
    "ms-fhir-converter/adt_a01_v28_full.hl7": ["AA"],
    "ms-fhir-converter/adt_a04_v23_mario_bom.hl7": ["AA"],
    "ms-fhir-converter/adt_a04_v23_redox_minimal.hl7": ["AA"],
    "ms-fhir-converter/adt_a05_v28_full.hl7": ["AA"],  # same MSH-10 as the A01: a resend
    "ms-fhir-converter/adt_a08_v28_full.hl7": ["AA"],
    "ms-fhir-converter/adt_a11_v28.hl7": ["AA"],
    "ms-fhir-converter/adt_a13_v28.hl7": ["AA"],
    "ms-fhir-converter/adt_a28_v28.hl7": ["AA"],
    "ms-fhir-converter/adt_a31_v28.hl7": ["AA"],
    "ms-fhir-converter/adt_a40_v28_merge.hl7": [],  # MSH-15/16 NE/NE: the sender wants no answer
    # MRG-1 names MR102 of authority BCBS, which no earlier message created: AR 204.
    "ms-fhir-converter/adt_a47_v28_change_identifier.hl7": ["AR"],
    "nhapi/adt_a01_v21_z01.hl7": ["AA"],
    "nhapi/adt_a01_v22_labgl1.hl7": ["AR"],
    "nhapi/adt_a01_v22_missing_msh10_subcomponents.hl7": ["AR"],
    "nhapi/adt_a01_v23_nk1_after_pv1.hl7": ["AA"],
    "nhapi/adt_a01_v23_zin.hl7": ["AA"],
    "nhapi/adt_a01_v26_repeated_names_zfa.hl7": ["AA"],
    "nhapi/adt_a04_v28_minimal.hl7": ["AA"],
    "nhapi/adt_a08_v22_zin_lf.hl7": ["AA"],
    "nhapi/adt_a28_v25_minimal.hl7": ["AA"],
    "nhapi/fuzz_adt_a40_letter_delimiters.hl7": ["AR"],
    "nhapi/fuzz_adt_a40_one_encoding_char.hl7": ["AR"],
    "nhapi/fuzz_mshh_no_delimiters.hl7": ["AR"],
    "python-hl7/ack_a01_v23_mllp_framed.hl7": ["AR"],
    "python-hl7/adt_a04_v25_batch_bhs_bts.hl7": ["BATCH"],
    "python-hl7/adt_a04_v25_file_fhs_two_batches.hl7": ["BATCH"],
    "python-hl7/malformed_batch_missing_msh.hl7": ["AR"],
    "python-hl7/mllp_framed_lf_separators.hl7": ["AR"],
    "python-hl7/non_utf8_cp1252_bytes.hl7": ["AR"],
    "python-hl7/nonstandard_separators_dollar.hl7": ["AR"],
    "python-hl7/oru_r01_v24_ghh_lab.hl7": ["AR"],
    "python-hl7/repetition_subcomponent_pid.hl7": ["AR"],
    "python-hl7/stream_two_messages_crlf_unframed.hl7": ["AR", "AR"],
}


def ack_codes(reply: bytes) -> list[str]:
    text = reply.decode("latin-1")
    if text.lstrip("\x0b").startswith("BHS"):
        return ["BATCH"]
    codes = []
    for segment in text.replace("\x0b", "").replace("\x1c", "\r").split("\r"):
        if segment[:3] == "MSA":
            codes.append(segment[4:6])
    return codes


def read_acks(sock: socket.socket, count: int) -> bytes:
    data = b""
    while data.count(b"\x1c") < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_every_corpus_file_gets_the_expected_acknowledgements(serve: ServeProcess) -> None:
    assert sorted(EXPECTED) == corpus_files(), "a corpus file has no expected outcome"
    client = MLLPClient("127.0.0.1", serve.mllp_port)
    client.socket.settimeout(15)
    seen: dict[str, list[str]] = {}
    for name, expected in EXPECTED.items():
        payload = corpus_bytes(name)
        if len(expected) == 1:
            seen[name] = ack_codes(client.send_message(payload))
        else:
            client.socket.sendall(b"\x0b" + payload + b"\x1c\r")
            seen[name] = ack_codes(read_acks(client.socket, len(expected)))
    client.close()
    assert seen == EXPECTED


def test_the_mpi_reflects_what_was_sent_and_merges_resolve(serve: ServeProcess) -> None:
    client = MLLPClient("127.0.0.1", serve.mllp_port)
    for name in ("ms-fhir-converter/adt_a01_v28_full.hl7", "ms-fhir-converter/adt_a04_v23_redox_minimal.hl7",
                 "lfh-hl7v2-fhir-converter/adt_a40_v26_two_patient_groups.hl7"):
        assert ack_codes(client.send_message(corpus_bytes(name))) == ["AA"]
    client.close()
    auth = {"Authorization": f"Bearer {staff_token(serve.env, 'reader', 'member account manager')}"}
    found = httpx.get(f"{serve.http}/mpi/patients", params={"identifier": "test1|PATID1234"},
                      headers=auth).json()
    [patient] = found["patients"]
    assert patient["best_demographics"]["names"][0]["family"] == "EVERYMAN"
    assert patient["winner"] == {"facility": "GHH", "tier": 1}
    survivor = httpx.get(f"{serve.http}/mpi/patients", params={"identifier": "XYZ|MR1"}, headers=auth).json()
    merged = httpx.get(f"{serve.http}/mpi/patients", params={"identifier": "XYZ|MR2"}, headers=auth).json()
    assert merged["patients"][0]["id"] == survivor["patients"][0]["id"]
    bad = httpx.get(f"{serve.http}/mpi/patients", params={"birthdate": "1980-13"}, headers=auth)
    assert bad.status_code == 400 and "birthdate" in bad.json()["detail"]


def test_mllp_send_from_python_hl7_gets_an_aa(serve: ServeProcess, tmp_path: Path) -> None:
    message = tmp_path / "a04.hl7"  # mllp_send reads MLLP frames from its file
    message.write_bytes(b"\x0b" + corpus_bytes("ms-fhir-converter/adt_a04_v23_redox_minimal.hl7") + b"\x1c\r")
    mllp_send = Path(sys.executable).with_name("mllp_send")
    done = subprocess.run([str(mllp_send), "--file", str(message), "--port", str(serve.mllp_port),
                           "127.0.0.1"], capture_output=True, text=True, timeout=60, check=True)
    assert "MSA|AA|1270326314" in done.stdout.replace("\r", "\n")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
def test_operational_endpoints_answer(serve: ServeProcess, path: str) -> None:
    assert httpx.get(f"{serve.http}{path}").status_code == 200
