"""The worker's database calls, one function per named query, each set-based over a batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import psycopg

from worker.pipeline import projection
from zenoti_ingest import sql
from zenoti_ingest.sql import upserts


@dataclass(frozen=True, slots=True)
class ArchiveRow:
    """A `webhook_events` row."""

    ingest_id: str
    received_at: datetime
    source: str
    delivery_id: str
    event_type: str | None
    path_hint: str
    event_timestamp: datetime | None
    status: str
    failure_class: str | None
    error: str | None
    attempts: int
    body: bytes
    first_failed_at: datetime | None  # of an earlier life as a dead letter (replays)


@dataclass(frozen=True, slots=True)
class EventRow:
    """An `events` row; `data` is the event's data object as JSON text."""

    delivery_id: str
    event_id: str | None
    event_type: str
    resource: str
    entity_id: str | None
    center_id: Any
    event_timestamp: datetime | None
    ingest_id: str
    received_at: datetime
    data: str


def insert_deliveries(conn: psycopg.Connection, rows: Sequence[ArchiveRow]) -> set[str]:
    """Archive rows; the ingest ids actually inserted (see the query for what is skipped)."""
    if not rows:
        return set()
    cursor = conn.execute(sql.queries["insert_deliveries"], _arrays(rows, ArchiveRow))
    return {str(row[0]) for row in cursor}


def release_claims(conn: psycopg.Connection, pairs: Sequence[tuple[str, str]]) -> None:
    """Undo the ledger claims of (delivery_id, ingest_id) archived before, not as processed."""
    if pairs:
        delivery_ids, ingest_ids = zip(*pairs, strict=True)
        conn.execute(
            sql.queries["release_claims"],
            {"delivery_id": list(delivery_ids), "ingest_id": list(ingest_ids)},
        )


def reopen_dead(
    conn: psycopg.Connection, ingest_ids: Sequence[str]
) -> dict[str, tuple[int, datetime | None]]:
    """Remove replayed dead letters (to be archived again); {ingest_id: (attempts, first
    failure)} of those that were still dead."""
    if not ingest_ids:
        return {}
    cursor = conn.execute(sql.queries["reopen_dead"], {"ingest_ids": list(ingest_ids)})
    return {str(ingest_id): (attempts, first) for ingest_id, attempts, first in cursor}


def insert_events(conn: psycopg.Connection, rows: Sequence[EventRow]) -> None:
    if rows:
        conn.execute(sql.queries["insert_events"], _arrays(rows, EventRow))


def upsert(
    conn: psycopg.Connection, table: projection.Table, rows: Sequence[dict[str, Any]]
) -> None:
    """Upsert current-state rows that all carry the same columns; newest wins per column."""
    if not rows:
        return
    columns = list(rows[0])
    catalog = upserts.columns_of(conn, table.name, columns)
    statement = upserts.upsert(table.name, table.key, columns, catalog)
    conn.execute(statement, {c: [r[c] for r in rows] for c in columns})


def _arrays(rows: Sequence[Any], kind: type) -> dict[str, list[Any]]:
    """Rows of a dataclass as {column: [values]}, the shape `unnest` takes."""
    return {f.name: [getattr(r, f.name) for r in rows] for f in fields(kind)}
