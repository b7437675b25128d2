"""A batch of deliveries, one transaction: archive, deduplicate, upsert.

A bad delivery is set aside (a dead letter), never sinks the batch: content problems are found
before the transaction, and a value Postgres refuses sends the batch through one transaction per
delivery so that only the guilty one is dead.
"""

from __future__ import annotations

import dataclasses
import json
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import psycopg_pool

from worker.pipeline import envelope, handlers, projection, store
from zenoti_ingest import contract, db, errors, logs

log = logs.get_logger(__name__)

# Status of a delivery whose ingest id was archived before: the stream handed its entry out
# again (a crash between commit and acknowledgement). It is settled; nothing is written.
ALREADY_ARCHIVED = "already_archived"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A delivery parsed and validated in memory, before any database work."""

    delivery: contract.Delivery
    attempts: int
    received_at: datetime
    event: envelope.Event | None = None
    projected: projection.Projected | None = None
    rejection: errors.DeliveryRejected | None = None

    def archive_row(
        self, status: str, history: tuple[int, datetime | None] = (0, None)
    ) -> store.ArchiveRow:
        """Its webhook_events row; `history` is (attempts, first failure) of an earlier life
        as a dead letter, for a replay."""
        earlier_attempts, first_failed_at = history
        event = self.event
        return store.ArchiveRow(
            ingest_id=self.delivery.ingest_id,
            received_at=self.received_at,
            source=self.delivery.source,
            delivery_id=event.delivery_id if event else envelope.body_hash(self.delivery),
            event_type=event.event_type if event else _hinted_type(self.delivery),
            path_hint=self.delivery.path_hint if _hinted_type(self.delivery) else "",
            event_timestamp=event.event_timestamp if event else None,
            status=status,
            failure_class=self.rejection.failure_class if self.rejection else None,
            error=self.rejection.reason if self.rejection else None,
            attempts=earlier_attempts + self.attempts,
            body=self.delivery.body,
            first_failed_at=first_failed_at,
        )


def _hinted_type(delivery: contract.Delivery) -> str | None:
    """The URL's event type, if it is one (a stream entry made by hand may hold anything)."""
    hint = delivery.path_hint
    return hint if hint and contract.EVENT_TYPE.fullmatch(hint) else None


def unparsed(delivery: contract.Delivery, attempts: int) -> Prepared:
    """A delivery not looked into (yet)."""
    received_at = datetime.fromtimestamp(delivery.received_at_us / 1_000_000, UTC)
    return Prepared(delivery, attempts, received_at)


def prepare(delivery: contract.Delivery, attempts: int) -> Prepared:
    """Parse and validate one delivery; a rejection is recorded, never raised.

    An exception nobody foresaw (a bug of ours on some input) makes that delivery alone a dead
    letter of class `unexpected`, to replay once fixed, instead of failing its whole batch.
    """
    item = unparsed(delivery, attempts)
    try:
        return _prepare(item)
    except Exception as exc:
        # Where it broke, not the message: a message can quote the value, personal data.
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        log.error(
            "delivery_unexpected_error",
            ingest_id=delivery.ingest_id,
            error_type=type(exc).__name__,
            at=f"{frame.filename}:{frame.lineno}",
        )
        return reject(
            item,
            errors.Unexpected(
                f"{type(exc).__name__} while reading the delivery (a bug: report it, then replay)"
            ),
        )


def _prepare(item: Prepared) -> Prepared:
    delivery = item.delivery
    try:
        event = envelope.open_delivery(delivery)
    except errors.DeliveryRejected as exc:
        return dataclasses.replace(item, rejection=exc)
    applied = projection.Applied(
        event.event_type, event.event_timestamp, item.received_at, delivery.ingest_id
    )
    try:
        projected = handlers.project(event, applied)
    except errors.DeliveryRejected as exc:
        return dataclasses.replace(item, event=event, rejection=exc)
    return dataclasses.replace(item, event=event, projected=projected)


def reject(item: Prepared, rejection: errors.DeliveryRejected) -> Prepared:
    return dataclasses.replace(item, projected=None, rejection=rejection)


def write(pool: psycopg_pool.ConnectionPool, items: list[Prepared]) -> dict[str, str]:
    """Commit a batch; {ingest_id: status}. TransientError leaves nothing written."""
    try:
        with db.transaction(pool) as conn:
            statuses = apply(conn, items)
    except errors.DataRejected as exc:
        if len(items) > 1:
            statuses = {}
            for item in items:
                statuses.update(write(pool, [item]))
            return statuses
        if items[0].rejection is not None:
            raise  # even the dead letter was refused: a bug of ours, never silently dropped
        return write(pool, [reject(items[0], exc)])
    _log_outcomes(items, statuses)
    return statuses


def apply(conn: psycopg.Connection, items: list[Prepared]) -> dict[str, str]:
    """Archive, deduplicate by delivery id, and upsert the newest state per key.

    Replayed dead letters are archived afresh (a replay of one no longer dead changes
    nothing); reprocessed deliveries keep their archive row and are projected again.
    """
    # The stream can hold one delivery twice (replayed twice, or re-enqueued while pending):
    # the first copy of an ingest id in the batch stands for all.
    unique = list({i.delivery.ingest_id: i for i in reversed(items)}.values())[::-1]
    reprocessed = [i for i in unique if i.delivery.mode == contract.REPROCESS]
    arriving = [i for i in unique if i.delivery.mode != contract.REPROCESS]
    history = store.reopen_dead(
        conn, [i.delivery.ingest_id for i in arriving if i.delivery.mode == contract.REPLAY]
    )

    def row(item: Prepared, status: str) -> store.ArchiveRow:
        return item.archive_row(status, history.get(item.delivery.ingest_id, (0, None)))

    good = [i for i in arriving if i.rejection is None]
    archived = store.insert_deliveries(
        conn, [row(i, "processed" if i.rejection is None else "dead") for i in arriving]
    )
    # A good delivery not archived either repeats a processed delivery id, or was archived
    # before; archived again as a duplicate, it is the first kind.
    repeats = [i for i in good if i.delivery.ingest_id not in archived]
    duplicates = store.insert_deliveries(conn, [row(i, "duplicate") for i in repeats])
    # Neither: archived before (handed out again), maybe not as processed: the rare path.
    store.release_claims(
        conn,
        [
            (i.event.delivery_id, i.delivery.ingest_id)
            for i in repeats
            if i.delivery.ingest_id not in duplicates
        ],
    )
    applied = [i for i in good if i.delivery.ingest_id in archived]
    applied += [i for i in reprocessed if i.rejection is None]
    # One events row per delivery id: reprocessing may bring two copies of one event.
    store.insert_events(conn, list({r.delivery_id: r for r in map(_event_row, applied)}.values()))
    for table, rows in _newest_per_key(applied):
        store.upsert(conn, table, rows)
    statuses = {}
    for item in items:
        ingest_id = item.delivery.ingest_id
        if item.delivery.mode == contract.REPROCESS:
            statuses[ingest_id] = "reprocessed" if item.rejection is None else "not_reprocessed"
        elif ingest_id in archived:
            statuses[ingest_id] = "processed" if item.rejection is None else "dead"
        elif ingest_id in duplicates:
            statuses[ingest_id] = "duplicate"
        else:
            statuses[ingest_id] = ALREADY_ARCHIVED
    return statuses


def _event_row(item: Prepared) -> store.EventRow:
    event, projected = item.event, item.projected
    return store.EventRow(
        delivery_id=event.delivery_id,
        event_id=event.event_id,
        event_type=event.event_type,
        resource=event.resource,
        entity_id=projected.entity_id,
        center_id=projected.center_id,
        event_timestamp=event.event_timestamp,
        ingest_id=item.delivery.ingest_id,
        received_at=item.received_at,
        data=json.dumps(event.data, ensure_ascii=False),
    )


def _newest_per_key(items: Iterable[Prepared]) -> list[tuple[projection.Table, list[dict]]]:
    """Rows grouped by table and by the columns they carry (an upsert statement each), the
    newest per key within a group, sorted by key so that concurrent batches lock rows in one
    order. Groups are independent: the upsert decides each column by its own version."""
    groups: dict[tuple[str, tuple[str, ...]], dict[Any, dict]] = {}
    for item in items:
        for name, rows in item.projected.rows.items():
            table = handlers.TABLES[name]
            for row in rows:
                row = {**row, "version": table.version(row)}
                kept = groups.setdefault((name, tuple(row)), {})
                key = row[table.key]
                if key not in kept or row["version"] > kept[key]["version"]:
                    kept[key] = row
    return [
        (handlers.TABLES[name], [kept[k] for k in sorted(kept)])
        for (name, _), kept in groups.items()
    ]


def _log_outcomes(items: list[Prepared], statuses: dict[str, str]) -> None:
    for item in items:
        ingest_id = item.delivery.ingest_id
        status = statuses.get(ingest_id)
        event_type = item.event.event_type if item.event else item.delivery.path_hint or None
        if status in ("dead", "not_reprocessed"):
            log.warning(
                f"delivery_{status}",
                ingest_id=ingest_id,
                event_type=event_type,
                failure_class=item.rejection.failure_class,
                reason=item.rejection.reason,
            )
        elif status == "duplicate":
            log.info("delivery_duplicate", ingest_id=ingest_id, event_type=event_type)
        else:
            log.debug(f"delivery_{status}", ingest_id=ingest_id, event_type=event_type)
