"""``portalbridge send``'s client against an MLLP receiver on loopback that records every frame:
bytes exactly as stored, reconnection and resending, acknowledgement modes, the summary."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.bootstrap import send_hl7_files
from engine.cli import main
from engine.errors import TransientFailure
from inbound.mllp import OversizeFrame, frame
from inbound.mllp_server import MllpServer

BOM = b"\xef\xbb\xbf"


def adt(control: str, *, modes: bytes = b"", separator: bytes = b"\r") -> bytes:
    return separator.join([
        b"MSH|^~\\&|ADT|NORTH|PB|PB|20260301101500||ADT^A08|" + control.encode() + b"|P|2.5.1" + modes,
        b"PID|1||" + control.encode() + b"^^^NGH^MR||SAMPLE^ANN", b""])


class Receiver:
    """An MLLP server on its own loop: records frames; ``plan`` says what to do with the next
    ones ("drop": close the connection unanswered, "hang": answer nothing), then ACKs."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.plan: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._server = MllpServer(self._handle, max_frame_bytes=1 << 20)
        self.port = 0
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self.port = self._loop.run_until_complete(self._server.start("127.0.0.1", 0))
        ready.set()
        self._loop.run_forever()

    async def _handle(self, payload: bytes | OversizeFrame) -> list[bytes]:
        assert isinstance(payload, bytes)
        self.frames.append(payload)
        step = self.plan.pop(0) if self.plan else "ack"
        if step == "drop":
            raise ConnectionResetError("the receiver drops this connection")
        if step == "hang":
            await asyncio.sleep(3)
            return []
        return _acks(payload)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _acks(payload: bytes) -> list[bytes]:
    text = payload.decode("utf-8").lstrip("\ufeff").replace("\n", "\r")
    replies = []
    for segment in (s for s in text.split("\r") if s.startswith("MSH")):
        fields = segment.split(segment[3])
        control, accept, application = fields[9], fields[14:15], fields[15:16]
        code = "R" if control.startswith("REFUSE") else "A"
        msa = f"MSA|A{code}|{control}" + ("|PID-7 is not a date" if code == "R" else "")
        if accept or application:  # enhanced mode: an accept acknowledgement first
            replies.append(f"MSH|^~\\&|PB|PB|ADT|NORTH|20260301||ACK|K|P|2.5.1\rMSA|C{code}|{control}\r")
            if application != ["AL"]:
                continue
        replies.append(f"MSH|^~\\&|PB|PB|ADT|NORTH|20260301||ACK|K|P|2.5.1\r{msa}\r")
    if text.startswith(("FHS", "BHS")):
        inner = "".join(r.split("\r", 1)[1] for r in replies)
        return [f"BHS|^~\\&|PB|PB\r{inner}BTS|{len(replies)}\r".encode()]
    return [r.encode() for r in replies]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def send(paths: list[Path], port: int, **options: object) -> list[tuple[str, str, str]]:
    settings = {"connections": 1, "timeout": 1.0, "attempts": 4, **options}
    answers, _ = send_hl7_files(paths, "127.0.0.1", port, on_message=lambda _a: None,
                                on_total=lambda _t: None, **settings)  # type: ignore[arg-type]
    return [(a.control_id, a.code, a.reason) for a in answers]


def test_every_shape_of_file_goes_out_byte_for_byte(receiver: Receiver, tmp_path: Path) -> None:
    files = {
        "bom-crlf.hl7": BOM + adt("M-1", separator=b"\r\n") + adt("M-2", separator=b"\r\n"),
        "lf.hl7": adt("M-3", separator=b"\n"),
        "batch.hl7": (b"FHS|^~\\&|ADT|NORTH\rBHS|^~\\&|ADT|NORTH\r" + adt("M-4") + adt("M-5")
                      + b"BTS|2\rFTS|1\r"),
        "framed.hl7": frame(adt("M-6")) + b"\r\n" + frame(adt("M-7")),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    answers = send(sorted(tmp_path.iterdir()), receiver.port)
    assert sorted(control for control, _, _ in answers) == [f"M-{n}" for n in range(1, 8)]
    assert {code for _, code, _ in answers} == {"AA"}
    sent = set(receiver.frames)
    assert files["batch.hl7"] in sent and files["lf.hl7"] in sent
    assert BOM + adt("M-1", separator=b"\r\n") in sent and adt("M-2", separator=b"\r\n") in sent
    assert adt("M-6") in sent and adt("M-7") in sent and len(receiver.frames) == 6


def test_a_dropped_connection_and_a_missing_ack_are_answered_by_sending_again(
        receiver: Receiver, tmp_path: Path) -> None:
    path = tmp_path / "feed.hl7"
    path.write_bytes(adt("R-1") + adt("R-2") + adt("R-3"))
    receiver.plan = ["ack", "drop", "hang"]  # connection dropped, then no ACK in time
    answers = send([path], receiver.port)
    assert answers == [("R-1", "AA", ""), ("R-2", "AA", ""), ("R-3", "AA", "")]
    assert receiver.frames == [adt("R-1"), adt("R-2"), adt("R-2"), adt("R-2"), adt("R-3")]


def test_enhanced_mode_refusals_and_lost_frames_are_reported(receiver: Receiver, tmp_path: Path) -> None:
    path = tmp_path / "modes.hl7"
    path.write_bytes(adt("E-1", modes=b"|||AL|AL") + adt("E-2", modes=b"|||AL|NE") + adt("REFUSE-3"))
    answers = send([path], receiver.port)
    assert answers == [("E-1", "AA", ""), ("E-2", "CA", ""), ("REFUSE-3", "AR", "PID-7 is not a date")]
    receiver.plan = ["drop"] * 4
    lost = tmp_path / "lost.hl7"
    lost.write_bytes(adt("L-1"))
    [(control, code, reason)] = send([lost], receiver.port, attempts=2)
    assert (control, code) == ("L-1", "lost") and "after 2 attempts" in reason


def test_the_command_prints_a_summary_with_the_reasons(receiver: Receiver, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.hl7").write_bytes(adt("S-1") + adt("REFUSE-2"))
    (tmp_path / "notes.txt").write_text("not an HL7 file")
    code = main(["send", "--port", str(receiver.port), "--connections", "2", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"sent 2 message(s) from 1 file(s) to 127.0.0.1:{receiver.port}: AA 1, AR 1" in out
    assert f"{tmp_path / 'a.hl7'}\tREFUSE-2\tAR\tPID-7 is not a date" in out


def test_no_receiver_is_one_failure_at_start(tmp_path: Path) -> None:
    path = tmp_path / "a.hl7"
    path.write_bytes(adt("N-1"))
    with pytest.raises(TransientFailure) as failed:
        send([path], 9, attempts=1)  # the discard port: nothing listens there
    assert failed.value.reason.startswith("cannot connect to 127.0.0.1:9")
