"""Guest package events: Creation, Redemption, Redemption Reversal, Status and Validity Update."""

from __future__ import annotations

from worker import projection

TABLES: tuple[projection.Table, ...] = ()

HANDLERS: dict[str, projection.Handler] = {}
