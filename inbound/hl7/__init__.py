"""HL7 v2 in ER7 form: bytes to text, streams to messages, messages to values.

Layers, each usable and testable on its own: :func:`decode_message` (charset),
:func:`split_stream` (batches and concatenated messages), :func:`parse` (one message),
:func:`unescape` (escape sequences, applied by the reader on every value it returns).
"""

from __future__ import annotations

from inbound.hl7.batch import Batch, split_stream
from inbound.hl7.charset import decode_message
from inbound.hl7.escapes import unescape
from inbound.hl7.reader import (
    HL7_NULL,
    Delimiters,
    Element,
    Er7Error,
    Er7Message,
    Segment,
    parse,
)

__all__ = [
    "HL7_NULL",
    "Batch",
    "Delimiters",
    "Element",
    "Er7Error",
    "Er7Message",
    "Segment",
    "decode_message",
    "parse",
    "split_stream",
    "unescape",
]
