"""Class schedule (sessions) and class booking events."""

from __future__ import annotations

from worker import projection

TABLES: tuple[projection.Table, ...] = ()

HANDLERS: dict[str, projection.Handler] = {}
