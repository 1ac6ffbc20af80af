"""Every kombu and py-amqp error maps into the engine's tree at the adapter (no leaks)."""

from __future__ import annotations

import inspect

import amqp.exceptions
import kombu.exceptions
import pytest

from engine.broker import BrokerRefused, BrokerUnavailable, broker_errors, classify_broker_error
from engine.errors import EngineError, TransientFailure


def library_errors() -> list[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for module in (amqp.exceptions, kombu.exceptions):
        for _name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, Exception) and not issubclass(value, Warning):
                found.add(value)
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def instance(cls: type[BaseException]) -> BaseException:
    try:
        return cls("boom")
    except TypeError:
        return cls()


@pytest.mark.parametrize("cls", library_errors(), ids=lambda c: c.__qualname__)
def test_every_library_error_is_unavailable_or_refused(cls: type[BaseException]) -> None:
    mapped = classify_broker_error(instance(cls))
    assert isinstance(mapped, BrokerUnavailable | BrokerRefused), cls


def test_socket_errors_mean_the_broker_is_unavailable() -> None:
    assert isinstance(classify_broker_error(ConnectionRefusedError()), BrokerUnavailable)
    assert isinstance(classify_broker_error(TimeoutError()), BrokerUnavailable)


def test_channel_errors_and_nacks_are_refusals_connection_errors_outages() -> None:
    assert isinstance(classify_broker_error(amqp.exceptions.NotFound("no exchange")), BrokerRefused)
    assert isinstance(classify_broker_error(amqp.exceptions.MessageNacked()), BrokerRefused)
    assert isinstance(classify_broker_error(amqp.exceptions.AccessRefused("vhost")), BrokerRefused)
    assert isinstance(classify_broker_error(amqp.exceptions.NotAllowed("vhost")), BrokerUnavailable)


def test_the_block_helper_raises_engine_errors_from_the_cause() -> None:
    with pytest.raises(BrokerUnavailable) as caught, broker_errors():
        raise amqp.exceptions.ConnectionForced("closed by an operator")
    assert isinstance(caught.value.__cause__, amqp.exceptions.ConnectionForced)
    assert "ConnectionForced" in caught.value.reason


def test_unknown_errors_are_internal_transient_failures_and_engine_errors_pass() -> None:
    mapped = classify_broker_error(ValueError("bug"))
    assert type(mapped) is TransientFailure and "ValueError" in mapped.reason
    original = EngineError("ours")
    assert classify_broker_error(original) is original
