"""The worker's database calls, one function per named query, each set-based over a batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import psycopg

from zenoti_ingest import sql


@dataclass(frozen=True, slots=True)
class ArchiveRow:
    """A `webhook_events` row."""

    ingest_id: str
    received_at: datetime
    delivery_id: str
    event_type: str | None
    path_hint: str
    event_timestamp: datetime | None
    status: str
    failure_class: str | None
    error: str | None
    attempts: int
    body: bytes


_ARCHIVE_COLUMNS = tuple(f.name for f in fields(ArchiveRow))


def insert_deliveries(conn: psycopg.Connection, rows: Sequence[ArchiveRow]) -> set[str]:
    """Archive rows; the ingest ids actually inserted (see the query for what is skipped)."""
    if not rows:
        return set()
    params = {col: [getattr(r, col) for r in rows] for col in _ARCHIVE_COLUMNS}
    cursor = conn.execute(sql.queries["insert_deliveries"], params)
    return {str(row[0]) for row in cursor}


def upsert(conn: psycopg.Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert a batch of current-state rows, one per key, with the table's named query."""
    if not rows:
        return
    params = {col: [r[col] for r in rows] for col in rows[0]}
    conn.execute(sql.queries[f"upsert_{table}"], params)
