"""Invoice.Closed: the invoice, its items, and the appointments it closes."""

from __future__ import annotations

from worker import projection

TABLES: tuple[projection.Table, ...] = ()

HANDLERS: dict[str, projection.Handler] = {}
