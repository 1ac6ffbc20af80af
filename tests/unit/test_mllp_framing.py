"""MLLP framing as a byte-level state machine."""

from __future__ import annotations

from inbound.mllp import FramingError, MllpDecoder, OversizeFrame, frame


def test_frames_split_across_reads_and_several_in_one_read() -> None:
    decoder = MllpDecoder(1000)
    assert decoder.feed(b"\x0bMSH|one") == []
    assert decoder.mid_frame
    assert decoder.feed(b"\r\x1c\r\x0bMSH|two\x1c\r\x0bMSH") == [b"MSH|one\r", b"MSH|two"]
    assert decoder.feed(b"|three\x1c") == [b"MSH|three"]
    assert decoder.feed(b"\r") == []  # the CR after an end block may arrive on its own


def test_whitespace_between_frames_is_tolerated_other_bytes_are_not() -> None:
    decoder = MllpDecoder(1000)
    assert decoder.feed(b"\r\n\x0bA\x1c\r\n") == [b"A"]
    [error] = decoder.feed(b"GET / HTTP/1.1\r\n")
    assert isinstance(error, FramingError) and "outside an MLLP frame" in error.reason


def test_an_oversize_frame_keeps_its_head_and_the_stream_continues() -> None:
    decoder = MllpDecoder(50)
    big = b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|CTRL|P|2.5\r" + b"X" * 100_000
    out = decoder.feed(frame(big) + frame(b"MSH|small"))
    assert isinstance(out[0], OversizeFrame)
    assert out[0].size == len(big) and out[0].head.startswith(b"MSH|^~\\&|A|B")
    assert out[1] == b"MSH|small"


def test_frame_wraps_a_payload() -> None:
    assert frame(b"x") == b"\x0bx\x1c\r"


def test_a_frame_over_a_small_limit_is_oversize_even_within_the_kept_head() -> None:
    decoder = MllpDecoder(1024)
    assert decoder.feed(b"\x0b" + b"A" * 1000) == []
    assert decoder.feed(b"B" * 200) == []
    [item] = decoder.feed(b"\x1c\r")
    assert isinstance(item, OversizeFrame) and item.size == 1200  # 1,200 bytes > 1,024


def test_past_the_limit_only_the_head_stays_in_memory() -> None:
    decoder = MllpDecoder(4 * 1024 * 1024)
    decoder.feed(b"\x0bMSH|")
    for _ in range(80):  # 5 MiB in 64 KiB reads
        decoder.feed(b"z" * 65536)
    assert decoder.buffered <= 8192
    [item] = decoder.feed(b"\x1c")
    assert isinstance(item, OversizeFrame) and item.size == 4 + 80 * 65536
    assert item.head.startswith(b"MSH|zzz") and len(item.head) == 8192
