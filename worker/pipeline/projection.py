"""What a resource module declares: its tables, and per event type a schema and a projection."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import Schema

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Applied:
    """Where an event came from; stamped on every current-state row it writes."""

    event_type: str
    event_at: datetime | None
    received_at: datetime
    ingest_id: str

    @property
    def at(self) -> datetime:
        """When the event happened: its time, or receipt time for a bare body (no timestamp)."""
        return self.event_at or self.received_at

    def stamp(self) -> dict[str, Any]:
        """The bookkeeping columns every current-state table has."""
        return {
            "last_event_type": self.event_type,
            "last_event_at": self.event_at,
            "last_received_at": self.received_at,
            "last_ingest_id": self.ingest_id,
        }


@dataclass(frozen=True, slots=True)
class Projected:
    """What an event writes: its `events` row's entity and center, and current-state rows
    ({table: [{column: value}]}, each row carrying the table's key and Applied.stamp())."""

    entity_id: str | None
    center_id: uuid.UUID | None
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


Projection = Callable[[Any, Applied], Projected]


@dataclass(frozen=True, slots=True)
class Handler:
    """An event type's schema (built once) and what its loaded record writes."""

    schema: Schema
    project: Projection


@dataclass(frozen=True, slots=True)
class Table:
    """A current-state table: its key, and what orders two events besides their time."""

    name: str
    key: str
    # A column that orders two events with the same event time (or none, for bare bodies),
    # before receipt time: appointments use Zenoti's appointment_progress.
    rank: str | None = None

    def projected(self, row: dict[str, Any]) -> Projected:
        """What an event writing this one row projects: its entity is the row's key, its
        center the row's center_id."""
        return Projected(text(row[self.key]), row.get("center_id"), {self.name: [row]})

    def version(self, row: dict[str, Any]) -> str:
        """The event's place in the order, as fixed-width hex that sorts bytewise: event time
        (none sorts first), rank, receipt time, ingest id. Newest wins, per column."""
        rank = row.get(self.rank) if self.rank else None
        return (
            f"{_micros(row['last_event_at']):016x}"
            f"{0 if rank is None else max(0, rank + 1):08x}"
            f"{_micros(row['last_received_at']):016x}"
            f"{uuid.UUID(str(row['last_ingest_id'])).hex}"
        )


def _micros(when: datetime | None) -> int:
    return 0 if when is None else max(0, (when - _EPOCH) // _MICROSECOND)


def text(value: Any) -> str | None:
    """An id of any JSON scalar type as text (ids are integers in some events, strings in
    others); None for null, objects and arrays."""
    return None if value is None or isinstance(value, dict | list | bool) else str(value)


def guid(value: Any) -> uuid.UUID | None:
    """A GUID if the value is one, else None (for best-effort columns of the event log)."""
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None
