"""The EMR side: MLLP connections that send their streams in order and resend on error.

Every patient has two streams, one per facility: NORTH (tier 1) sends the patient's name,
EAST (tier 2) its phone number, each message a new value, each carrying only its own
facility's MRN (the first, an A04, also the enterprise identifier that links the two
records). A NORTH stream and the EAST stream of the same patient go to different listeners.
A connection sends the next message of a stream only after the previous one was answered
AA; an AE, a lost connection or a silence is answered by sending the same bytes again, as
EMR interfaces do.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from inbound.mllp import MllpDecoder, frame

FACILITIES = ("NORTH", "EAST")
AUTHORITY = {"NORTH": "NGH", "EAST": "ECC"}
RULES = """
version: 1
facilities:
  - {code: NORTH, tier: 1, assigning_authority: NGH}
  - {code: EAST, tier: 2, assigning_authority: ECC}
routes:
  - {match: {message_type: ADT, trigger: [A04, A08]}, action: upsert_patient}
  - {match: {message_type: "*"}, action: reject, reason: ADT only}
events: {mpi_changed_for: all_patients}  # every patient's change is an event to account for
"""
ACK_TIMEOUT = 30.0  # seconds an EMR waits for an ACK before it sends again
GIVE_UP = 240.0  # seconds of resending one message before the harness calls it lost


def value(facility: str, patient: int, number: int) -> str:
    """What message ``number`` of a stream sets: the name (NORTH) or the phone (EAST)."""
    return f"N{patient}X{number}" if facility == "NORTH" else f"555{patient:03d}{number:05d}"


def message(facility: str, patient: int, number: int) -> tuple[str, bytes]:
    """The control id and bytes of message ``number`` of a stream."""
    control_id = f"{facility[0]}{patient}-{number}"
    trigger = "A04" if number == 0 else "A08"
    ids = f"{facility[0]}{patient}^^^{AUTHORITY[facility]}^MR"
    if number == 0:
        ids += f"~E{patient}^^^ENTERPRISE^PI"
    new = value(facility, patient, number)
    pid = f"PID|1||{ids}||{new}^ANN" if facility == "NORTH" else f"PID|1||{ids}||||||||||{new}^PRN^PH"
    text = (f"MSH|^~\\&|EMR|{facility}|PB|PB|20260101120000||ADT^{trigger}^ADT_A01|{control_id}|P|2.5.1\r"
            f"EVN|{trigger}|20260101120000\r{pid}\r")
    return control_id, text.encode()


@dataclass
class Tally:
    """What the senders saw; shared by the connections."""

    answers: Counter[str] = field(default_factory=Counter)  # AA, AE, AR, lost
    messages: int = 0  # distinct messages (control ids) sent
    sends: int = 0  # sends, resends included
    accepted: set[str] = field(default_factory=set)  # control ids answered AA
    refused: dict[str, str] = field(default_factory=dict)  # control id -> "AR"
    last: dict[tuple[str, int], str] = field(default_factory=dict)  # stream -> last AA'd value
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, answer: str) -> None:
        with self.lock:
            self.answers[answer] += 1


class Connection(threading.Thread):
    """One EMR connection: its streams in turn, each message until it is answered."""

    def __init__(self, port: int, streams: list[tuple[str, int]], tally: Tally,
                 stop: threading.Event) -> None:
        super().__init__(name=f"emr-{port}", daemon=True)
        self.port, self.streams, self.tally, self.stop = port, streams, tally, stop
        self.sock: socket.socket | None = None
        self.decoder = MllpDecoder(1 << 20)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            number = 0
            while not self.stop.is_set():
                for facility, patient in self.streams:
                    self._deliver(facility, patient, number)
                number += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the harness
            self.error = exc
        finally:
            self._close()

    def _deliver(self, facility: str, patient: int, number: int) -> None:
        """Send until answered AA or AR, even after ``stop``: a message sent and never
        answered may have been applied, and the books must know how it ended."""
        control_id, payload = message(facility, patient, number)
        with self.tally.lock:
            self.tally.messages += 1
        deadline = time.monotonic() + GIVE_UP
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{control_id} was never answered AA or AR in {GIVE_UP:.0f} s")
            answer = self._exchange(payload)
            self.tally.count(answer or "lost")
            if answer == "AA":
                with self.tally.lock:
                    self.tally.accepted.add(control_id)
                    self.tally.last[(facility, patient)] = value(facility, patient, number)
                return
            if answer == "AR":
                with self.tally.lock:
                    self.tally.refused[control_id] = "AR"
                return
            time.sleep(0.2)  # AE or no answer: the same bytes again, a moment later

    def _exchange(self, payload: bytes) -> str | None:
        """The MSA-1 code of the answer, or None when the connection failed or stayed silent."""
        try:
            sock = self._connected()
            with self.tally.lock:
                self.tally.sends += 1
            sock.sendall(frame(payload))
            deadline = time.monotonic() + ACK_TIMEOUT
            while time.monotonic() < deadline:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("closed by the listener")
                for item in self.decoder.feed(data):
                    if isinstance(item, bytes):
                        return _msa_code(item)
            raise TimeoutError("no ACK")
        except OSError:
            self._close()
            return None

    def _connected(self) -> socket.socket:
        while self.sock is None:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=ACK_TIMEOUT)
                self.decoder = MllpDecoder(1 << 20)
            except OSError:
                time.sleep(0.2)  # the listener is down: an EMR keeps trying
        return self.sock

    def _close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _msa_code(ack: bytes) -> str:
    for segment in ack.decode("latin-1").split("\r"):
        if segment.startswith("MSA|"):
            return segment.split("|")[1]
    return "?"


def connections(ports: tuple[int, int], patients: int, tally: Tally, stop: threading.Event,
                per_listener: int = 4) -> list[Connection]:
    """``per_listener`` connections to each listener: NORTH streams to the first, EAST streams
    to the second, so both listeners write every patient."""
    made: list[Connection] = []
    for port, facility in zip(ports, FACILITIES, strict=True):
        for n in range(per_listener):
            streams = [(facility, p) for p in range(patients) if p % per_listener == n]
            made.append(Connection(port, streams, tally, stop))
    return made

