"""Logging without patient data: the one logging set-up of every portalbridge process.

The rule: a log line says what happened and where (ids, codes, locations, counts, exception
types), never a value a message carried: no names, birth dates, addresses, phones, e-mails,
SSNs or MRNs, at any level. Our own log calls are written that way; what libraries hand to
the logging system is made safe here, in one place, whoever logged it:

- an exception that is not the engine's own is shown as its type (and SQLSTATE) with its
  frames, never its message, in a traceback (the whole ``__cause__``/``__context__`` chain)
  and as an argument of a log message: psycopg's messages quote rows (``DETAIL: Failing row
  contains (...)``), SQLAlchemy's carry statements, a ``ValueError`` may quote its input;
- the engine's refusals (``RejectedMessage``) are shown as class, table 0357 code and
  location: their reason may quote the input, and it is told to the sender instead;
- loggers that log data in their normal course are held at WARNING whatever the level:
  ``sqlalchemy.engine`` (statements and result rows at INFO/DEBUG) and ``uvicorn.access``
  (URLs with their query strings). Engines are also created with ``hide_parameters=True``.

``configure_logging`` installs this on the root logger's handlers, and routes uncaught
exceptions (main thread and others) and warnings through them; uvicorn is started without
a logging configuration of its own, so its records reach those handlers too.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from engine.errors import EngineError, RejectedMessage

__all__ = ["QUIET_LOGGERS", "RedactingFilter", "configure_logging", "describe_exception",
           "redacted_traceback"]

#: Loggers held at WARNING: statements, rows or URLs below it (the first two), or narration
#: an operator does not need (Alembic's plugins, fontTools' glyph subsets of letters).
QUIET_LOGGERS = ("sqlalchemy.engine", "uvicorn.access", "alembic", "fontTools")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MAX_CHAIN = 16


def configure_logging(level: str, stream: Any = None) -> None:
    """Log to stderr at ``level`` (a name such as ``INFO``), through ``RedactingFilter``."""
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=stream or sys.stderr,
                        format=_FORMAT)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # What would otherwise reach stderr around the handlers goes through them too.
    logging.captureWarnings(True)
    sys.excepthook = _uncaught
    threading.excepthook = _uncaught_in_thread


class RedactingFilter(logging.Filter):
    """Rewrites a record so that no foreign exception's message reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redacted_traceback(record.exc_info[1])
        if isinstance(record.msg, BaseException):
            record.msg = describe_exception(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {key: _safe(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_safe(value) for value in record.args)
        return True


def describe_exception(exc: BaseException) -> str:
    """An exception in words that quote nothing it was raised about."""
    if isinstance(exc, RejectedMessage):
        where = f" at {exc.location}" if exc.location else ""
        return f"{type(exc).__name__} (HL7 {exc.hl7_error_code}){where}"
    if isinstance(exc, EngineError):
        return f"{type(exc).__name__}: {exc.reason}"  # our own words, from types and codes
    driver = getattr(exc, "orig", None)
    name = _qualified(exc) + (f" ({_qualified(driver)})" if isinstance(driver, BaseException) else "")
    state = getattr(driver, "sqlstate", None) or getattr(exc, "sqlstate", None)
    return f"{name}, SQLSTATE {state}" if isinstance(state, str) and state else name


def redacted_traceback(exc: BaseException) -> str:
    """A traceback like Python's, with every exception of the chain described safely."""
    parts: list[str] = []
    for link, note in _chain(exc):
        if note:
            parts.append(f"\n{note}\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_list(traceback.extract_tb(link.__traceback__)))
        parts.append(describe_exception(link) + "\n")
    return "".join(parts).rstrip("\n")


def _chain(exc: BaseException) -> Iterator[tuple[BaseException, str]]:
    """The chain from its root cause to ``exc``, each with the note Python prints before it."""
    links: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    note = ""
    while current is not None and id(current) not in seen and len(links) < _MAX_CHAIN:
        seen.add(id(current))
        links.append((current, note))
        if current.__cause__ is not None:
            current, note = current.__cause__, ("The above exception was the direct cause of "
                                                "the following exception:")
        elif current.__context__ is not None and not current.__suppress_context__:
            current, note = current.__context__, ("During handling of the above exception, "
                                                  "another exception occurred:")
        else:
            current = None
    # Printed root first; a link's note says how the link printed after it relates to it.
    exceptions = [link for link, _ in reversed(links)]
    notes = ["", *(note for _, note in reversed(links[1:]))]
    return iter(zip(exceptions, notes, strict=True))


def _uncaught(kind: type[BaseException], exc: BaseException,
              tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("portalbridge").critical("uncaught exception", exc_info=(kind, exc, tb))


def _uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("portalbridge").critical(
        "uncaught exception in thread %s", name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def _safe(value: Any) -> Any:
    return describe_exception(value) if isinstance(value, BaseException) else value


def _qualified(exc: BaseException) -> str:
    kind = type(exc)
    module = kind.__module__
    return kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"
