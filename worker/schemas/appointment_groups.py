"""AppointmentGroup.Created and AppointmentGroup.Status."""

from __future__ import annotations

from worker import projection

TABLES: tuple[projection.Table, ...] = ()

HANDLERS: dict[str, projection.Handler] = {}
