"""The HL7 v2 corpus, read the way the engine reads it: bytes -> text -> messages.

Framing is the MLLP layer's job, not the reader's, so the two MLLP-framed corpus files are
unframed here (start block 0x0B, end block 0x1C and its CR) exactly as that layer would.
"""

from __future__ import annotations

from pathlib import Path

from inbound.hl7 import decode_message, split_stream

CORPUS = Path(__file__).resolve().parents[2] / "samples" / "corpus" / "hl7v2"


def corpus_files() -> list[str]:
    """Every ``.hl7`` file of the corpus, relative to it, so a new file is tested at once."""
    return sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.hl7"))


def corpus_bytes(name: str) -> bytes:
    """The file's bytes with any MLLP framing removed."""
    raw = (CORPUS / name).read_bytes()
    if raw.startswith(b"\x0b"):
        raw = raw[1:].removesuffix(b"\r").removesuffix(b"\x1c")
    return raw


def corpus_messages(name: str) -> tuple[list[str], str]:
    """The messages of a corpus file and the codec they were decoded with."""
    text, codec = decode_message(corpus_bytes(name))
    return split_stream(text).messages, codec
