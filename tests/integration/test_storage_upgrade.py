"""An installation filled under the schema before partitioning (migrations up to 0009) upgrades
with `migrate`: every row, every body byte and every dedup decision survives."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from structlog.testing import capture_logs

from tests.fixtures import clones, old_schema, samples
from tests.fixtures.database import delivery, write
from zenoti_ingest import db, migrate, services, storage

BEFORE_PARTITIONING = "0009"
# A body of every event type Zenoti's pages describe (what `make demo` sends).
EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.json"))
ARCHIVE_COLUMNS = (
    "ingest_id, received_at, source, delivery_id, event_type, path_hint, event_timestamp, status,"
    " failure_class, error, attempts, body, processed_at, first_failed_at, last_failed_at,"
    " discard_reason"
)
EVENT_COLUMNS = (
    "delivery_id, event_id, event_type, resource, entity_id, center_id, event_timestamp,"
    " ingest_id, received_at, data"
)


@pytest.fixture
def old_database(postgres_service: services.Service, pg_admin: psycopg.Connection) -> Iterator[str]:
    """A database migrated up to 0009 only, dropped after the test."""
    name = f"zenoti_test_upgrade_{uuid.uuid4().hex[:12]}"
    url = make_conninfo(postgres_service.url, dbname=name)
    try:
        assert old_schema.migrate_up_to(url, BEFORE_PARTITIONING)[-1].startswith("0009")
        yield url
    finally:
        clones.drop(pg_admin, name)


def _data(document: dict) -> dict:
    """An example's data object (the examples are enveloped or bare)."""
    return document["data"] if "event_type" in document and "data" in document else document


def _fill(url: str) -> dict[str, bytes]:
    """Every event type processed (with its event and a redelivery archived as duplicate),
    dead letters, a discarded one, spread over the last 20 weeks; {delivery_id: body} of
    the processed ones."""
    now = datetime.now(UTC)
    processed: dict[str, bytes] = {}
    rows, events = [], []
    for n, example in enumerate(EXAMPLES):
        event_type, delivery_id = example.stem, f"upgrade-{n}"
        data = _data(json.loads(example.read_bytes()))
        body = samples.envelope(event_type, data, delivery_id, "2024-01-02T03:04:05Z")
        at = now - timedelta(days=7 * (n % 20), minutes=n)
        original = str(uuid.uuid4())
        processed[delivery_id] = body
        rows.append((original, at, "", delivery_id, event_type, "processed", None, body, None))
        rows.append(
            (
                str(uuid.uuid4()),
                at + timedelta(seconds=5),
                "",
                delivery_id,
                event_type,
                "duplicate",
                None,
                body,
                None,
            )
        )
        events.append(
            (
                delivery_id,
                delivery_id + "e",
                event_type,
                event_type.split(".")[0],
                f"entity-{n}",
                original,
                at,
                json.dumps(data),
            )
        )
    for n, status in enumerate(("dead", "dead", "discarded")):
        body = b"{not json " + bytes([65 + n]) + b"\xff\x00"
        at = now - timedelta(days=150 + n)
        rows.append(
            (
                str(uuid.uuid4()),
                at,
                "spa",
                f"hash-{n}",
                None,
                status,
                "parse",
                body,
                "gave up" if status == "discarded" else None,
            )
        )
    with psycopg.connect(url) as conn:
        conn.cursor().executemany(
            "INSERT INTO webhook_events (ingest_id, received_at, source, delivery_id, event_type,"
            " status, failure_class, body, discard_reason, processed_at, first_failed_at,"
            " last_failed_at, error, attempts)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 3)",
            [
                (*r, r[1] + timedelta(seconds=1), *([r[1], r[1], "why"] if r[6] else [None] * 3))
                for r in rows
            ],
        )
        conn.cursor().executemany(
            "INSERT INTO events (delivery_id, event_id, event_type, resource, entity_id,"
            " ingest_id, received_at, event_timestamp, data)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
            [(*e[:7], e[6], e[7]) for e in events],
        )
    return processed


def _everything(url: str) -> tuple[list, list]:
    with psycopg.connect(url) as conn:
        archive = conn.execute(
            f"SELECT {ARCHIVE_COLUMNS} FROM webhook_events ORDER BY 1"
        ).fetchall()
        log = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY 1").fetchall()
    return archive, log


def test_an_installation_upgrades_without_losing_a_row_or_a_dedup_decision(
    old_database: str, settings
) -> None:
    processed = _fill(old_database)
    before = _everything(old_database)
    assert len(before[0]) == 2 * len(samples.EVENT_TYPES) + 3 == 2 * len(EXAMPLES) + 3

    with capture_logs() as logged:
        applied = migrate.migrate(old_database)
    assert applied[0].startswith("0010")
    notices = [e["message"] for e in logged if e["event"] == "migration_notice"]
    steps = [n for n in notices if n.startswith("0010:")]
    rows, events = len(before[0]), len(before[1])
    assert steps[0].startswith(f"0010: {rows} archived deliveries and {events} events received")
    assert [s.split(" (")[0] for s in steps[1:]] == [
        "0010: deduplication ledger filled",
        "0010: archive attached, keys built",
        "0010: event log attached, keys built",
    ]
    after = _everything(old_database)
    assert after == before  # every column of every row, bodies byte for byte
    with psycopg.connect(old_database) as conn:
        ledger = dict(conn.execute("SELECT delivery_id, ingest_id::text FROM delivery_ids"))
        originals = dict(
            conn.execute(
                "SELECT delivery_id, ingest_id::text FROM webhook_events WHERE status = 'processed'"
            )
        )
        assert ledger == originals and set(ledger) == set(processed)
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (2,)

    # Partitions for the coming weeks go after the attached history, which is younger than
    # the archive's 90 days: only delivery ids older than the 30 dedup days would go.
    with psycopg.connect(old_database, autocommit=True) as conn:
        storage.ensure_partitions(conn, datetime.now(UTC))
        expiring = storage.plan(conn, settings, datetime.now(UTC))
    assert [(e.table, e.kind) for e in expiring] == [("delivery_ids", "rows")]

    # Zenoti redelivers every processed event: each is a duplicate; a new one is processed.
    upgraded = settings.replace(database_url=old_database)
    now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
    with db.create_pool(upgraded) as pool:
        again = [delivery(body, "", now_us) for body in processed.values()]
        assert set(write(pool, *again).values()) == {"duplicate"}
        fresh = samples.envelope(
            "Appointment.Started",
            samples.repaired_json("appointment-started"),
            "after-upgrade",
            "2024-01-02T03:04:05Z",
        )
        new = delivery(fresh, "", now_us)
        assert write(pool, new) == {new.ingest_id: "processed"}
