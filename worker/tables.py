"""The current-state tables: each one's key, and what orders its events besides their time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    key: str
    # A column that orders two events with the same event time (or none, for bare bodies),
    # before receipt time: appointments use Zenoti's appointment_progress.
    rank: str | None = None

    def order(self, row: dict[str, Any]) -> tuple:
        """Newest last: the same order as the upsert's WHERE clause (sql/upserts.py)."""
        rank = row.get(self.rank) if self.rank else None
        return (
            row["last_event_at"] or _EARLIEST,
            -1 if rank is None else rank,
            row["last_received_at"],
            row["last_ingest_id"],
        )


TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        Table("appointments", key="appointment_id", rank="progress"),
    )
}
