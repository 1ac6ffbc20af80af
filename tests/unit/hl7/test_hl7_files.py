"""HL7 files cut into frames for ``portalbridge send``, each byte as stored."""

from __future__ import annotations

from inbound.hl7.files import pieces_of
from inbound.mllp import frame

MSH_A = b"MSH|^~\\&|ADT|NORTH|PB|PB|20260301||ADT^A04|F-1|P|2.5.1"
MSH_B = b"MSH|^~\\&|ADT|NORTH|PB|PB|20260301||ADT^A08|F-2|P|2.5.1|||AL|NE"
PID = b"PID|1||100^^^NGH^MR||SAMPLE^ANN"


def test_several_messages_with_a_bom_and_crlf_are_cut_without_a_byte_changed() -> None:
    data = b"\xef\xbb\xbf" + MSH_A + b"\r\n" + PID + b"\r\n\r\n" + MSH_B + b"\r\n" + PID + b"\r\n"
    pieces = pieces_of(data)
    assert [p.headers for p in pieces] == [(MSH_A,), (MSH_B,)]
    assert b"".join(p.payload for p in pieces) == data
    assert pieces[0].payload.startswith(b"\xef\xbb\xbf") and not any(p.batch for p in pieces)


def test_lf_only_and_swapped_delimiters_stay_as_they_are() -> None:
    swapped = b"MSH$%~\\&$ADT$NORTH$PB$PB$20260301$$ADT%A08$F-3$P$2.5\nPID$1$$100%%%NGH%MR\n"
    [piece] = pieces_of(swapped)
    assert piece.payload == swapped and piece.headers == (swapped.split(b"\n")[0],)


def test_a_batch_file_is_one_frame() -> None:
    data = (b"FHS|^~\\&|ADT|NORTH\rBHS|^~\\&|ADT|NORTH\r" + MSH_A + b"\r" + PID + b"\r" + MSH_B + b"\r"
            + PID + b"\rBTS|2\rFTS|1\r")
    [piece] = pieces_of(data)
    assert piece.batch and piece.payload == data and piece.headers == (MSH_A, MSH_B)


def test_an_already_framed_file_is_sent_frame_by_frame() -> None:
    first, second = MSH_A + b"\r" + PID + b"\r", MSH_B + b"\r" + PID + b"\r"
    pieces = pieces_of(frame(first) + b"\r\n" + frame(second))
    assert [p.payload for p in pieces] == [first, second]
    assert pieces_of(b"\r\n  \n") == []
