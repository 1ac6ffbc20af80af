"""Translate kombu's and py-amqp's errors into the engine's tree, where the broker is called.

Two outcomes matter to callers: the broker could not be reached or dropped us
(:class:`BrokerUnavailable`: back off, keep the work, try again) and the broker refused one
operation on an open connection (:class:`BrokerRefused`: a channel error or a negative
publisher confirm, which the relay charges to the row that caused it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import amqp.exceptions
import kombu.exceptions

from engine.errors import EngineError, TransientFailure

__all__ = ["BrokerRefused", "BrokerUnavailable", "broker_errors", "classify_broker_error"]


class BrokerUnavailable(TransientFailure):
    """The broker cannot be reached, refused the connection, or the connection was lost."""


class BrokerRefused(TransientFailure):
    """The broker (or the client library) refused one operation; the connection may live on."""


_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, timed out (socket.timeout is an OSError)
    amqp.exceptions.ConnectionError,  # also kombu.exceptions.ConnectionError
    kombu.exceptions.OperationalError,
    kombu.exceptions.LimitExceeded,
)
_REFUSED: tuple[type[BaseException], ...] = (
    amqp.exceptions.ChannelError,  # also kombu.exceptions.ChannelError
    amqp.exceptions.MessageNacked,
    kombu.exceptions.KombuError,
)
#: Checked last: bases and transport errors that say nothing more specific.
_OTHERWISE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    amqp.exceptions.AMQPError,
    kombu.exceptions.HttpError,
)


def classify_broker_error(exc: BaseException) -> EngineError:
    """What a failed broker operation means; every kombu and py-amqp error maps to one of two."""
    if isinstance(exc, EngineError):
        return exc
    name = type(exc).__name__
    if isinstance(exc, _UNAVAILABLE):
        detail = f"{name}: {exc}" if isinstance(exc, amqp.exceptions.AMQPError) else name
        return BrokerUnavailable(f"broker unavailable ({detail})")
    if isinstance(exc, _REFUSED):
        return BrokerRefused(f"broker refused ({name}: {exc})")
    if isinstance(exc, _OTHERWISE_UNAVAILABLE):
        return BrokerUnavailable(f"broker unavailable ({name}: {exc})")
    return TransientFailure(f"internal error ({name})")


@contextlib.contextmanager
def broker_errors() -> Iterator[None]:
    """Run a block of broker calls; library errors leave it as engine errors."""
    try:
        yield
    except EngineError:
        raise
    except (*_UNAVAILABLE, *_REFUSED, *_OTHERWISE_UNAVAILABLE) as exc:
        raise classify_broker_error(exc) from exc
