"""Property-based tests of the readers (hypothesis), run in CI: seeded and derandomized.

Each test draws a few thousand inputs: raw bytes, and corpus messages and resources broken by
the mutators of ``tests/fuzz/mutate.py`` driven by hypothesis' own random source (so every run
draws the same inputs). The properties are those of ``tests/fuzz/targets.py``; the longer run
is ``python -m tests.fuzz --long``. The ``@example`` inputs are crashes fuzzing found, kept.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.errors import EngineError, RejectedMessage
from inbound.fhir import WriteRequest, error_outcome, patient_command, read_json, validate_patient
from inbound.fhir.parse import choose_version
from tests.fuzz.mutate import fhir_seeds, hl7_seeds, mutate_fhir, mutate_hl7, mutate_stream
from tests.fuzz.targets import Receiver, decode_stream, read_hl7, rules

CI = settings(derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HL7, ACKNOWLEDGED, FHIR = hl7_seeds(), hl7_seeds(always_acknowledged=True), fhir_seeds()
RULES = rules()

hl7_inputs = st.one_of(
    st.binary(max_size=3000),
    st.builds(lambda rng: mutate_hl7(HL7, rng), st.randoms(use_true_random=False)),
    st.builds(lambda head, tail: b"MSH|^~\\&|" + head + b"\rPID|" + tail,
              st.binary(max_size=300), st.binary(max_size=300)),
)

# A mutated MSH whose MSH-15 ("F") is outside table 0155 once got no acknowledgement at all.
SILENCED = (b"MSH|^~\\&|IRIS|SANTER|AMB_R|SANTER|200803051508||ADT^A03|26320|P|2.5|||F|\r"
            b"PID|1||1^^^GHH^MR||ZZZ^ZZZ||19830824|F")


@settings(CI, max_examples=4000)
@given(hl7_inputs)
def test_the_er7_reader_reads_or_refuses_by_name(data: bytes) -> None:
    try:
        read_hl7(data)
    except RejectedMessage as refused:
        assert refused.reason  # an AR with a reason, never anything else


@settings(CI, max_examples=3000)
@given(st.one_of(st.binary(max_size=4000),
                 st.builds(lambda rng: mutate_stream(HL7, rng), st.randoms(use_true_random=False))),
       st.lists(st.integers(min_value=0, max_value=20_000), max_size=8),
       st.sampled_from([1024, 4096, 65536]))
def test_the_mllp_decoder_finds_the_same_frames_however_the_stream_is_cut(
        stream: bytes, cuts: list[int], max_frame: int) -> None:
    decode_stream(stream, cuts, max_frame)


@pytest.fixture(scope="module")
def receiver() -> Any:
    answering = Receiver()
    yield answering
    answering.close()


@settings(CI, max_examples=3000)
@given(st.one_of(
    st.builds(lambda rng: mutate_hl7(ACKNOWLEDGED, rng), st.randoms(use_true_random=False)),
    st.binary(max_size=2000)))
@example(SILENCED)
def test_every_frame_through_the_receiver_is_answered(receiver: Receiver, frame: bytes) -> None:
    receiver.answer(frame)


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                        st.text(max_size=40))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)),
        max_leaves=40)


def _as_patient(value: Any) -> bytes:
    import json

    return json.dumps({"resourceType": "Patient", "x": value}).encode()


KEY_ERROR = (b'{"resourceType": "Patient", "contained": [{"resourceType": "Organnzation", "id": "1"}],'
             b' "managingOrganization": {"reference": "#1"}}')


@settings(CI, max_examples=2500)
@given(st.one_of(
    st.builds(lambda rng: mutate_fhir(FHIR, rng), st.randoms(use_true_random=False)),
    st.builds(_as_patient, _json_values()),
    st.binary(max_size=2000)))
@example(KEY_ERROR)
@example(b'{"resourceType": "Patient", "photo": [{"url": 1e308}]}')  # an AttributeError, once
@example(b'{"resourceType": "Patient", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}")
def test_the_fhir_reader_answers_every_body_with_a_4xx_or_a_command(body: bytes) -> None:
    client = RULES.fhir.clients[0]
    try:
        data = read_json(body, "Patient")
        validate_patient(data, choose_version(None, data, "R4"))
        patient_command(data, WriteRequest(rules=RULES, client=client, control_id="fuzz",
                                           interaction="create"))
    except EngineError as refused:
        status, outcome, _ = error_outcome(refused)
        assert 400 <= status < 500, (status, outcome)
        assert outcome["issue"][0]["diagnostics"]


def test_the_mutators_are_seeded() -> None:
    assert mutate_hl7(HL7, random.Random(7)) == mutate_hl7(HL7, random.Random(7))
    assert mutate_fhir(FHIR, random.Random(7)) == mutate_fhir(FHIR, random.Random(7))
