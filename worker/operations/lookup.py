"""Where deliveries went: every delivery concerning an id, where each is now, what it wrote.

The id may be an ingest id (from the 202), an envelope `id`, an `event_id`, or the key of a
current-state row (appointment, group, invoice, guest, employee, class session or booking,
membership, package). Postgres says what was archived; the stream what is still on its way:
it is read only so far (SCAN_LIMIT entries from the oldest, and around the time a UUIDv7
ingest id was issued), and the result says how much was read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg
import redis
from psycopg import rows as pgrows
from psycopg import sql as pgsql

from worker.operations import deadletters
from worker.pipeline import batch, envelope, handlers
from zenoti_ingest import contract, errors, sql, stream

SCAN_LIMIT = 10_000  # stream entries read from the oldest, at most
_PAGE = 100  # entries per XRANGE (bodies come with them)
_ISSUED_WINDOW_MS = (2_000, 10_000)  # an entry's time after its UUIDv7 ingest id's: -2 s..+10 s
_ISSUED_WINDOW_ENTRIES = 10_000  # read in that window, at most (whatever the scan limit)
_REPROJECTED = 10  # processed deliveries whose written rows are worked out again, at most
# How a row came to be what it is (migration 0009): bookkeeping, not state; find leaves it out.
VERSION_COLUMNS = ("version", "newest_columns", "stragglers")
# Rows that arrive inside another entity's events: an appointment in its group's and its
# invoice's, an invoice item in its invoice's. Those events are read for the id too.
CONTAINERS = {
    "appointments": ("appointment_group_id", "invoice_id"),
    "invoice_items": ("invoice_id",),
}


# A delivery's fields (the columns of find_deliveries), and `stream`: its entries there.
FIELDS = (
    "ingest_id", "received_at", "source", "event_type", "delivery_id", "event_id", "entity_id",
    "status", "processed_at", "duplicate_of", "failure_class", "reason", "attempts",
    "last_failed_at", "discard_reason",
)  # fmt: skip


@dataclass
class Found:
    """What `find` shows: deliveries oldest first, current-state rows, how much of the stream
    was read (`scanned` of `length` entries), and what remains of deliveries whose archive
    rows expired (`pruned`: delivery id, and the ledger's and the event log's record)."""

    id: str
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    pruned: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    stream: dict[str, Any] = field(default_factory=dict)


def find(
    conn: psycopg.Connection,
    client: redis.Redis,
    keys: stream.Keys,
    wanted: str,
    scan_limit: int = SCAN_LIMIT,
) -> Found:
    """Every delivery concerning `wanted` and where it is now (archived, in the stream, or
    both), and the current-state rows: those keyed by it, else those its deliveries wrote."""
    found = Found(wanted)
    as_uuid = _uuid(wanted)
    entity_rows = current_rows(conn, [(t, wanted) for t in handlers.TABLES.values()], as_uuid)
    containers = [
        str(r["row"][column])
        for r in entity_rows
        for column in CONTAINERS.get(r["table"], ())
        if r["row"].get(column)
    ]
    params = {
        "id": wanted,
        "ingest_id": str(as_uuid) if as_uuid else None,
        "writers": [r["written_by"]["ingest_id"] for r in entity_rows],
        "entity_ids": [wanted, str(as_uuid)] if as_uuid else [wanted],
        "containers": containers,
        "mentioned": str(as_uuid) if as_uuid else wanted,  # GUIDs are lower case in bodies
    }
    delivery_ids = [d for (d,) in conn.execute(sql.queries["find_matches"], params)]
    found.deliveries = _deliveries(conn, delivery_ids)
    if not found.deliveries and not entity_rows:  # the least likely lookup: last
        delivery_ids += [d for (d,) in conn.execute(sql.queries["find_by_event_id"], params)]
        found.deliveries = _deliveries(conn, delivery_ids)
    archived = {d["delivery_id"] for d in found.deliveries}
    found.pruned = _pruned(conn, [d for d in delivery_ids if d not in archived])
    needles = {f'"{v}"'.encode() for v in (wanted, wanted.lower(), wanted.upper())}
    known = {d["ingest_id"] for d in found.deliveries} | ({str(as_uuid)} if as_uuid else set())
    try:
        hits, found.stream = scan(client, keys, known, needles, as_uuid, scan_limit)
        _merge(found, hits, handed_out(client, keys, list(hits)))
    except redis.RedisError as exc:  # what Postgres holds is still worth showing
        found.stream = {"unreachable": f"redis: {type(exc).__name__}"}
    found.rows = entity_rows or _rows_written(conn, found.deliveries)
    return found


def _pruned(conn: psycopg.Connection, delivery_ids: list[str]) -> list[dict[str, Any]]:
    """Deliveries no longer archived that the ledger or the event log still records."""
    if not delivery_ids:
        return []
    cursor = conn.execute(sql.queries["find_pruned"], {"delivery_ids": delivery_ids})
    return [
        {
            "delivery_id": delivery_id,
            "seen": {"ingest_id": seen_id, "received_at": seen_at} if seen_id else None,
            "event": {"ingest_id": event_id, "received_at": event_at} if event_id else None,
        }
        for delivery_id, seen_id, seen_at, event_id, event_at in cursor
    ]


def current_rows(
    conn: psycopg.Connection, wanted: list[tuple[Any, str]], as_uuid: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """The current-state rows with these (table, key) pairs, each with the delivery that wrote
    it last; a key is looked up only in tables whose key can hold it."""
    tables = handlers.TABLES.values()
    types = dict(
        conn.execute(
            sql.queries["find_key_types"],
            {"tables": [t.name for t in tables], "keys": [t.key for t in tables]},
        ).fetchall()
    )
    found = []
    for table, key in wanted:
        value: Any = key
        if types.get(table.name) == "uuid":
            value = as_uuid if as_uuid is not None else _uuid(key)
            if value is None:
                continue
        statement = pgsql.SQL(sql.queries["find_current_row"]).format(
            table=pgsql.Identifier(table.name), key=pgsql.Identifier(table.key)
        )
        for (columns,) in conn.execute(statement, {"key": value}):
            row = {k: v for k, v in columns.items() if k not in VERSION_COLUMNS}
            found.append(
                {
                    "table": table.name,
                    "key": table.key,
                    "row": row,
                    "written_by": {
                        "ingest_id": row.get("last_ingest_id"),
                        "event_type": row.get("last_event_type"),
                        "event_at": row.get("last_event_at"),
                        "received_at": row.get("last_received_at"),
                    },
                }
            )
    return found


def _deliveries(conn: psycopg.Connection, delivery_ids: list[str]) -> list[dict[str, Any]]:
    """The archived deliveries of these delivery ids, oldest first, as find_deliveries names
    their fields; none is in the stream yet (scan says)."""
    with conn.cursor(row_factory=pgrows.dict_row) as cursor:
        cursor.execute(sql.queries["find_deliveries"], {"delivery_ids": delivery_ids})
        return [{**row, "stream": []} for row in cursor]


def _rows_written(conn: psycopg.Connection, deliveries: list[dict[str, Any]]) -> list[dict]:
    """The current-state rows the processed deliveries write, worked out again from their
    archived bodies (with today's handlers), each with whoever wrote it last."""
    processed = [d["ingest_id"] for d in deliveries if d["status"] == deadletters.PROCESSED]
    written: dict[tuple[str, str], Any] = {}
    for delivery in deadletters.load_archived(
        conn, processed[:_REPROJECTED], deadletters.PROCESSED
    ):
        projected = batch.prepare(delivery, 1).projected
        for name, rows in (projected.rows if projected else {}).items():
            table = handlers.TABLES[name]
            for row in rows:
                written.setdefault((name, str(row[table.key])), table)
    return current_rows(conn, [(table, key) for (_, key), table in written.items()])


def scan(
    client: redis.Redis,
    keys: stream.Keys,
    ingest_ids: set[str],
    needles: set[bytes],
    as_uuid: uuid.UUID | None,
    limit: int,
) -> tuple[dict[bytes, dict], dict[str, Any]]:
    """Stream entries holding one of these ingest ids, or a body naming the id (as a JSON
    string): those around the time a UUIDv7 id was issued, and the oldest `limit` entries."""
    hits: dict[bytes, dict] = {}

    def look(entries: list) -> None:
        for entry_id, fields in entries:
            body = fields.get(b"body", b"")
            ingest_id = fields.get(b"ingest_id", b"").decode(errors="replace")
            if ingest_id in ingest_ids or any(n in body for n in needles):
                hits[entry_id] = fields

    if as_uuid is not None and as_uuid.version == 7:
        issued_ms = as_uuid.int >> 80
        before, after = _ISSUED_WINDOW_MS
        start, end = f"{issued_ms - before}", f"{issued_ms + after}"
        _read(client, keys.deliveries, start, end, _ISSUED_WINDOW_ENTRIES, look)
    scanned = _read(client, keys.deliveries, "-", "+", limit, look)
    length = client.xlen(keys.deliveries)
    return hits, {"scanned": min(scanned, length), "length": length, "complete": scanned >= length}


def _read(client: redis.Redis, key: str, start: str, end: str, limit: int, look) -> int:
    """Hand entries start..end to `look`, a page at a time, `limit` at most; how many read."""
    scanned = 0
    while scanned < limit:
        count = min(_PAGE, limit - scanned)
        page = client.xrange(key, start, end, count=count)
        look(page)
        scanned += len(page)
        if len(page) < count:
            break
        start = "(" + page[-1][0].decode()
    return scanned


def handed_out(client: redis.Redis, keys: stream.Keys, entry_ids: list[bytes]) -> dict:
    """{entry id: who holds it, how many times it was handed out, since when} for entries
    handed to a worker and not acknowledged (XPENDING of each)."""
    if not entry_ids:
        return {}
    pipe = client.pipeline(transaction=False)
    for entry_id in entry_ids:
        pipe.xpending_range(keys.deliveries, keys.group, entry_id, entry_id, 1)
    held = {}
    for entry_id, reply in zip(entry_ids, pipe.execute(raise_on_error=False), strict=True):
        if isinstance(reply, list) and reply:  # else not handed out (or no group yet)
            held[entry_id] = {
                "consumer": reply[0]["consumer"].decode(),
                "times_delivered": reply[0]["times_delivered"],
                "idle_seconds": round(reply[0]["time_since_delivered"] / 1000, 1),
            }
    return held


def _merge(found: Found, hits: dict[bytes, dict], held: dict) -> None:
    """Put the stream entries found with their archived deliveries, or as deliveries of their
    own (not archived yet), and say for each whether a worker holds it."""
    by_id = {d["ingest_id"]: d for d in found.deliveries}
    for entry_id, fields in hits.items():
        try:
            delivery = stream.decode(fields)
        except (KeyError, ValueError, UnicodeDecodeError):
            continue
        where = {
            "entry_id": entry_id.decode(),
            "mode": delivery.mode or "live",
            "handed_out": held.get(entry_id),
        }
        record = by_id.get(delivery.ingest_id)
        if record is None:
            record = by_id[delivery.ingest_id] = _unarchived(delivery)
            found.deliveries.append(record)
        record["stream"].append(where)
    found.deliveries.sort(key=lambda d: (d["received_at"], d["ingest_id"]))


def _unarchived(delivery: contract.Delivery) -> dict[str, Any]:
    """A delivery known only from its stream entry: what its envelope says, if it has one."""
    received = batch.unparsed(delivery, 0).received_at
    event_type = delivery_id = event_id = None
    try:
        event = envelope.open_delivery(delivery)
        event_type, delivery_id, event_id = event.event_type, event.delivery_id, event.event_id
    except errors.DeliveryRejected:
        event_type = delivery.path_hint or None
    return {
        **dict.fromkeys(FIELDS),  # archived deliveries' fields, unknown as yet
        "ingest_id": delivery.ingest_id,
        "received_at": received,
        "source": delivery.source,
        "event_type": event_type,
        "delivery_id": delivery_id,
        "event_id": event_id,
        "stream": [],
    }


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
