"""Acknowledgements: which are sent (original and enhanced mode) and what they say."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.errors import InvalidMessage, StoreUnavailable
from inbound.hl7.ack import AckParts, ack_codes, build_ack
from inbound.hl7.header import read_header
from inbound.hl7.reader import Delimiters, parse

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def header(accept: str = "", application: str = "", version: str = "2.5.1") -> object:
    text = (f"MSH|^~\\&|SENDAPP|SENDFAC^1.2.3^ISO|RECVAPP|RECVFAC|20260101||ADT^A08^ADT_A01|CTRL-9|P|"
            f"{version}|||{accept}|{application}")
    return read_header(parse(text))


@pytest.mark.parametrize(("accept", "application", "outcome", "codes"), [
    ("", "", "ok", ["AA"]), ("", "", "transient", ["AE"]), ("", "", "rejected", ["AR"]),
    ("AL", "NE", "ok", ["CA"]), ("AL", "NE", "transient", ["CE"]), ("AL", "NE", "rejected", ["CR"]),
    ("NE", "AL", "ok", ["AA"]), ("NE", "NE", "ok", []), ("ER", "NE", "ok", []),
    ("ER", "NE", "rejected", ["CR"]), ("SU", "NE", "ok", ["CA"]), ("SU", "NE", "transient", []),
    ("AL", "AL", "ok", ["CA", "AA"]), ("AL", "ER", "rejected", ["CR", "AR"]), ("", "AL", "ok", ["CA", "AA"]),
])
def test_acknowledgement_modes(accept: str, application: str, outcome: str, codes: list[str]) -> None:
    error = {"ok": None, "transient": StoreUnavailable("down"),
             "rejected": InvalidMessage("bad", "PID-7")}[outcome]
    assert ack_codes(header(accept, application), error) == codes  # type: ignore[arg-type]


@pytest.mark.parametrize(("accept", "application", "codes"), [
    ("F", "", ["CA"]), ("XX", "NE", ["CA"]), ("NE", "19830824", ["AA"]), ("F", "Q", ["CA", "AA"]),
])
def test_a_value_outside_table_0155_is_answered_never_silent(accept: str, application: str,
                                                            codes: list[str]) -> None:
    # Found by fuzzing: a mutated MSH with "F" in MSH-15 got no acknowledgement at all.
    assert ack_codes(header(accept, application), None) == codes  # type: ignore[arg-type]


def test_an_ack_swaps_sender_and_receiver_and_echoes_the_control_id() -> None:
    h = header()
    text = build_ack(AckParts(header=h, delimiters=Delimiters(), control_id="CTRL-9"),  # type: ignore[arg-type]
                     "AA", now=NOW, ack_id="ACK1")
    msh, msa = text.rstrip("\r").split("\r")
    fields = msh.split("|")
    assert fields[2:6] == ["RECVAPP", "RECVFAC", "SENDAPP", "SENDFAC^1.2.3^ISO"]
    assert fields[6] == "20260304050607+0000"
    assert fields[8:12] == ["ACK^A08^ACK", "ACK1", "P", "2.5.1"]
    assert msa == "MSA|AA|CTRL-9"


def test_a_rejection_carries_err_with_location_code_and_reason_in_v25_form() -> None:
    error = InvalidMessage("PID-7 is not a valid date | really", "PID-7", code="102")
    text = build_ack(AckParts(header=header(), delimiters=Delimiters(), control_id="CTRL-9",  # type: ignore[arg-type]
                              error=error), "AR", now=NOW, ack_id="A")
    _, msa, err = text.rstrip("\r").split("\r")
    assert msa == "MSA|AR|CTRL-9|PID-7 is not a valid date \\F\\ really"
    assert err == "ERR||PID^1^7^1|102^Data type error^HL70357|E||||PID-7 is not a valid date \\F\\ really"


def test_before_v25_the_error_goes_in_err_1() -> None:
    text = build_ack(AckParts(header=header(version="2.3"), delimiters=Delimiters(),  # type: ignore[arg-type]
                              control_id="C", error=InvalidMessage("missing", "MSH-10")),
                     "AR", now=NOW, ack_id="A")
    assert text.rstrip("\r").split("\r")[2] == "ERR|MSH^1^10^101&Required field missing&HL70357"


def test_an_ack_without_a_readable_header_still_answers() -> None:
    text = build_ack(AckParts(header=None, delimiters=Delimiters(), control_id="",
                              error=StoreUnavailable("database down")), "AE", now=NOW, ack_id="A")
    msh, msa, err = text.rstrip("\r").split("\r")
    assert msh.startswith("MSH|^~\\&|PORTALBRIDGE|PORTALBRIDGE|||")
    assert msa == "MSA|AE||database down"
    assert "207^Application internal error" in err


def test_custom_delimiters_are_used_for_the_answer() -> None:
    message = parse("MSH$%~\\&$APP$FAC$$$20260101$$ADT%A08$C1$P$2.5")
    d = message.delimiters
    text = build_ack(AckParts(header=read_header(message), delimiters=d, control_id="C1",
                              error=InvalidMessage("a$b", "PID-3")), "AR", now=NOW, ack_id="A")
    assert text.startswith("MSH$%~\\&$")
    assert "MSA$AR$C1$a\\F\\b" in text
