"""Fewer socket writes for py-amqp: frames are collected while corked and written at once.

py-amqp writes every published message with its own ``sendall``; publishing thousands (the
relay's events, the enrollment consumer's replies) then costs a system call each. Installed
through py-amqp's ``frame_writer`` hook, a cork stands in for the transport under the frame
writer and collects frames while ``corked``; ``flush`` writes them in one go.
"""

from __future__ import annotations

from typing import Any

from amqp.method_framing import frame_writer

__all__ = ["Cork", "corked_frame_writer"]


class Cork:
    """Stands in for py-amqp's transport under its frame writer: collects frames when corked."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._buffer = bytearray()
        self.corked = False

    def write(self, data: bytes | memoryview) -> None:
        if self.corked:
            self._buffer += data  # copies: py-amqp reuses its frame buffer
        else:
            self._transport.write(data)

    def flush(self) -> None:
        if self._buffer:
            self._transport.write(self._buffer)
            self._buffer = bytearray()


def corked_frame_writer(connection: Any, transport: Any) -> tuple[Any, Cork]:
    """py-amqp's own frame writer, writing into a new cork (returned too, to flush it)."""
    cork = Cork(transport)
    return frame_writer(connection, cork), cork
