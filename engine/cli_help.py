"""What every command's ``--help`` says about the settings (environment variables) it reads."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["STORE_SETTINGS", "settings_epilog"]

#: What a command that opens the store reads: the database, the routing file, the log level.
STORE_SETTINGS = ("PORTALBRIDGE_DATABASE_URL", "PORTALBRIDGE_CONFIG", "PORTALBRIDGE_LOG_LEVEL")


def settings_epilog(names: Iterable[str]) -> str:
    """The closing line of a command's help: ``settings read: PORTALBRIDGE_...``. Every
    command reads the log level (``engine.cli.main`` sets logging up first)."""
    return "settings read (environment): " + ", ".join(dict.fromkeys((*names, "PORTALBRIDGE_LOG_LEVEL")))
