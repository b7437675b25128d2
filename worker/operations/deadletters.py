"""List, show, replay and discard dead deliveries; send archived ones through the stream again.

`webhook_events` is the only store: a dead letter is a row with status 'dead' (the
`dead_letters` view), discarding one changes its status, and replaying or reprocessing
publishes the archived delivery to the same stream as live traffic, for the same drain task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg

from zenoti_ingest import contract, sql

DEAD, PROCESSED, DISCARDED = "dead", "processed", "discarded"
CHUNK = 500  # deliveries loaded (bodies included) and published per round trip to Postgres


class Publisher(Protocol):
    """What sends a delivery to the stream: zenoti_ingest.stream.Producer."""

    def publish(self, delivery: contract.Delivery) -> None: ...


@dataclass(frozen=True)
class Filters:
    """Which deliveries a command means; None (or empty) matches everything."""

    ingest_ids: tuple[str, ...] = ()
    failure_classes: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    since: datetime | None = None  # received at or after
    until: datetime | None = None  # received before
    reason_contains: str | None = None  # case-insensitive text in the error
    source: str | None = None  # "" is the default source

    def any(self) -> bool:
        """Does it narrow anything down?"""
        return any(value not in (None, ()) for value in asdict(self).values())

    def params(self) -> dict[str, Any]:
        """The query parameters: lists for the repeatable filters, None for "any"."""
        return {
            name: (list(value) or None) if isinstance(value, tuple) else value
            for name, value in asdict(self).items()
        }


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead letter as `dlq list` shows it: never its body."""

    ingest_id: str
    received_at: datetime
    source: str
    event_type: str | None
    failure_class: str | None
    attempts: int
    first_failed_at: datetime | None
    last_failed_at: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Record:
    """A delivery's whole `webhook_events` row, body included (`dlq show`)."""

    ingest_id: str
    status: str
    received_at: datetime
    source: str
    delivery_id: str
    event_type: str | None
    path_hint: str
    event_timestamp: datetime | None
    failure_class: str | None
    reason: str | None
    attempts: int
    first_failed_at: datetime | None
    last_failed_at: datetime | None
    processed_at: datetime | None
    discard_reason: str | None
    body: bytes


def list_dead(
    conn: psycopg.Connection, filters: Filters, limit: int | None = None
) -> list[DeadLetter]:
    """Dead letters matching the filters, oldest first."""
    cursor = conn.execute(sql.queries["list_dead"], {**filters.params(), "limit": limit})
    return [DeadLetter(str(row[0]), *row[1:]) for row in cursor]


def summarize_dead(
    conn: psycopg.Connection, filters: Filters
) -> list[tuple[str | None, str | None, int]]:
    """(failure class, event type, count) of the dead letters matching the filters."""
    return [tuple(row) for row in conn.execute(sql.queries["summarize_dead"], filters.params())]


def show_delivery(conn: psycopg.Connection, ingest_id: str) -> Record | None:
    """Any delivery's record, in whatever status, or None when there is no such delivery."""
    row = conn.execute(sql.queries["show_delivery"], {"ingest_id": ingest_id}).fetchone()
    if row is None:
        return None
    return Record(str(row[0]), *row[1:-1], bytes(row[-1]))


def select_archived(conn: psycopg.Connection, status: str, filters: Filters) -> list[str]:
    """Ingest ids of the deliveries in `status` matching the filters, in order of receipt."""
    cursor = conn.execute(sql.queries["select_archived"], {**filters.params(), "status": status})
    return [str(ingest_id) for (ingest_id,) in cursor]


def delivery_statuses(conn: psycopg.Connection, ingest_ids: Sequence[str]) -> dict[str, str]:
    """{ingest_id: status} of those ids that are archived at all."""
    cursor = conn.execute(sql.queries["delivery_statuses"], {"ingest_ids": list(ingest_ids)})
    return {str(ingest_id): status for ingest_id, status in cursor}


def load_archived(
    conn: psycopg.Connection, ingest_ids: Sequence[str], status: str, mode: str = contract.LIVE
) -> list[contract.Delivery]:
    """The deliveries, as the ingress accepted them, of those ids still in `status`, in the
    order asked; `mode` tells the worker how to treat them."""
    cursor = conn.execute(
        sql.queries["load_archived"], {"ingest_ids": list(ingest_ids), "status": status}
    )
    found = {
        str(ingest_id): contract.Delivery(
            str(ingest_id), received_at_us, path_hint, bytes(body), source, mode
        )
        for ingest_id, received_at_us, path_hint, body, source in cursor
    }
    return [found[i] for i in ingest_ids if i in found]


def replay(
    conn: psycopg.Connection,
    publisher: Publisher,
    ingest_ids: Sequence[str],
    progress: Callable[[int], None] = lambda _: None,
) -> list[str]:
    """Publish dead letters again (mode replay); the ids published. The worker archives each
    afresh or finds it settled: replaying twice applies it once."""
    return _send_again(conn, publisher, ingest_ids, DEAD, contract.REPLAY, progress)


def reprocess(
    conn: psycopg.Connection,
    publisher: Publisher,
    ingest_ids: Sequence[str],
    progress: Callable[[int], None] = lambda _: None,
) -> list[str]:
    """Publish processed deliveries again (mode reprocess) to be projected again with today's
    schemas and handlers; their archive rows stay as they are. The ids published."""
    return _send_again(conn, publisher, ingest_ids, PROCESSED, contract.REPROCESS, progress)


def discard(conn: psycopg.Connection, ingest_ids: Sequence[str], reason: str) -> list[str]:
    """Mark dead letters discarded with a reason (never deleted); the ids that were dead."""
    cursor = conn.execute(
        sql.queries["discard_dead"], {"ingest_ids": list(ingest_ids), "reason": reason}
    )
    return [str(ingest_id) for (ingest_id,) in cursor]


def _send_again(
    conn: psycopg.Connection,
    publisher: Publisher,
    ingest_ids: Sequence[str],
    status: str,
    mode: str,
    progress: Callable[[int], None],
) -> list[str]:
    sent = []
    for start in range(0, len(ingest_ids), CHUNK):
        chunk = ingest_ids[start : start + CHUNK]
        for delivery in load_archived(conn, chunk, status, mode):
            publisher.publish(delivery)
            sent.append(delivery.ingest_id)
        progress(len(chunk))
    return sent
