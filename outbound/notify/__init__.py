"""Notifications out: plain-text messages, the file sender and the notifier loop."""

from __future__ import annotations

__all__: list[str] = []
