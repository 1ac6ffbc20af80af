"""The logging set-up: foreign exceptions lose their messages, refusals their reasons."""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator

import pytest

from engine.errors import InvalidMessage, StoreUnavailable
from engine.logs import QUIET_LOGGERS, RedactingFilter, configure_logging, redacted_traceback

MARKER = "ZQX-SMITH-1961"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """A handler with the filter on a logger of its own (pytest's handlers stay untouched)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test.logs")
    logger.addHandler(handler)
    logger.propagate = False
    yield out
    logger.removeHandler(handler)
    logger.propagate = True


def failing_chain() -> None:
    try:
        raise ValueError(f"invalid literal: {MARKER}")
    except ValueError as exc:
        raise RuntimeError(f"DETAIL: Failing row contains ({MARKER})") from exc


def test_a_traceback_keeps_types_and_frames_and_drops_messages(stream: io.StringIO) -> None:
    try:
        failing_chain()
    except RuntimeError:
        logging.getLogger("test.logs").exception("handling a message failed")
    text = stream.getvalue()
    assert MARKER not in text
    assert "ValueError" in text and "RuntimeError" in text and "failing_chain" in text
    assert "direct cause" in text


def test_exceptions_given_as_arguments_are_described(stream: io.StringIO) -> None:
    log = logging.getLogger("test.logs")
    log.warning("error ignored terminating %r: %s", "<pipeline>", ValueError(MARKER))
    log.warning("as a mapping: %(error)s", {"error": KeyError(MARKER)})
    log.warning(ValueError(MARKER))
    text = stream.getvalue()
    assert MARKER not in text and text.count("ValueError") == 2 and "KeyError" in text


def test_our_refusals_show_code_and_place_and_transient_reasons_stay() -> None:
    refusal = InvalidMessage(f"PID-7 {MARKER} is not a date", "PID-7", code="102")
    try:
        raise StoreUnavailable("database unavailable (OperationalError)") from refusal
    except StoreUnavailable as exc:
        text = redacted_traceback(exc)
    assert MARKER not in text
    assert "InvalidMessage (HL7 102) at PID-7" in text
    assert "StoreUnavailable: database unavailable (OperationalError)" in text


def test_a_database_error_shows_its_sqlstate() -> None:
    class FakeDriverError(Exception):
        sqlstate = "22001"

    class Wrapped(Exception):
        orig = FakeDriverError(f"value too long: {MARKER}")

    text = redacted_traceback(Wrapped(f"[parameters: ('{MARKER}',)]"))
    assert MARKER not in text and "SQLSTATE 22001" in text and "FakeDriverError" in text


def test_configure_logging_quiets_the_data_loggers_and_routes_uncaught_exceptions() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.excepthook, threading.excepthook,
             {name: logging.getLogger(name).level for name in QUIET_LOGGERS})
    out = io.StringIO()
    root.handlers = []
    try:
        configure_logging("DEBUG", stream=out)
        assert all(logging.getLogger(n).getEffectiveLevel() == logging.WARNING for n in QUIET_LOGGERS)
        thread = threading.Thread(target=failing_chain, name="doomed")
        thread.start()
        thread.join()
        try:
            failing_chain()
        except RuntimeError:
            sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
    finally:
        root.handlers, level, sys.excepthook, threading.excepthook, levels = saved
        root.setLevel(level)
        logging.captureWarnings(False)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)
    text = out.getvalue()
    assert "uncaught exception in thread doomed" in text and "uncaught exception\n" in text
    assert MARKER not in text
