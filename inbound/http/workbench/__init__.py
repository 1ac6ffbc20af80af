"""The staff Workbench under ``/workbench``: one module per concern, each its own router."""

from __future__ import annotations

from inbound.http.workbench.audit import AUDIT_READERS, audit_router

__all__ = ["AUDIT_READERS", "audit_router"]
