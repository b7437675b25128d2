"""The usual worker: one Celery task per webhook that parses, validates, upserts and archives.

It loads with the project's own Marshmallow schema and upserts the same newest-wins way, one
row at a time, so the difference from our worker is the design: a message and a commit each.
"""

from __future__ import annotations

import functools
import json
import os
from datetime import UTC, datetime

import psycopg
import uuid_utils
from celery import Celery
from marshmallow import ValidationError
from psycopg import sql

from worker.schemas import appointments
from worker.schemas import fields as zf

TASK_NAME = "bench.handle_webhook"
ARCHIVE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_archive (
    id          bigserial PRIMARY KEY,
    ingest_id   uuid NOT NULL,
    received_at timestamptz NOT NULL,
    status      text NOT NULL,
    body        text NOT NULL
)
"""
_ARCHIVE = """
INSERT INTO bench_archive (ingest_id, received_at, status, body)
VALUES (%(ingest_id)s, %(received_at)s, %(status)s, %(body)s)
"""
_TIMESTAMP = zf.UtcTimestamp()
_STATUS = {"Appointment.Started": "started", "Appointment.Completed": "completed"}
_COLUMNS = (
    *appointments.Appointment.__slots__,
    "appointment_group_id",
    "invoice_id",
    "invoice_number",
    "center_id",
    "status",
    "last_event_type",
    "last_event_at",
    "last_received_at",
    "last_ingest_id",
)
_UPSERT = (
    sql.SQL("""
INSERT INTO appointments AS a ({columns}) VALUES ({values})
ON CONFLICT (appointment_id) DO UPDATE SET {updates}, updated_at = now()
WHERE (coalesce(EXCLUDED.last_event_at, '-infinity'), coalesce(EXCLUDED.progress, -1),
       EXCLUDED.last_received_at, EXCLUDED.last_ingest_id)
    > (coalesce(a.last_event_at, '-infinity'), coalesce(a.progress, -1),
       a.last_received_at, a.last_ingest_id)
""")
    .format(
        columns=sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
        values=sql.SQL(", ").join(map(sql.Placeholder, _COLUMNS)),
        updates=sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
            for c in _COLUMNS
            if c != "appointment_id"
        ),
    )
    .as_string()
)  # rendered once: a Composed is rendered again on every execute


def make_app(broker_url: str) -> Celery:
    """A Celery app with the handler registered; at-least-once like ours (ack after the work)."""
    app = Celery("zi_bench_baseline", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    app.task(name=TASK_NAME)(handle_webhook)
    return app


def handle_webhook(body: str) -> None:
    """One webhook: json.loads, the schema's load, one upsert per appointment, one archive row,
    one commit. A body that can't be read is archived as dead."""
    received_at = datetime.now(UTC)
    ingest_id = str(uuid_utils.uuid7())
    try:
        rows, status = _appointment_rows(body, received_at, ingest_id), "processed"
    except (ValueError, KeyError, TypeError, ValidationError):  # JSONDecodeError is a ValueError
        rows, status = [], "dead"
    conn = _connection()
    with conn.transaction():
        conn.execute(
            _ARCHIVE,
            {"ingest_id": ingest_id, "received_at": received_at, "status": status, "body": body},
        )
        for row in rows:
            conn.execute(_UPSERT, row)


def _appointment_rows(body: str, received_at: datetime, ingest_id: str) -> list[dict]:
    document = json.loads(body)
    status = _STATUS[document["event_type"]]
    group = appointments.APPOINTMENT_GROUP_EVENT.load(document["data"])
    shared = {
        "appointment_group_id": group.appointment_group_id,
        "invoice_id": group.invoice_id,
        "invoice_number": group.invoice_number,
        "center_id": group.center_id,
        "status": status,
        "last_event_type": document["event_type"],
        "last_event_at": _TIMESTAMP.deserialize(document.get("event_timestamp")),
        "last_received_at": received_at,
        "last_ingest_id": ingest_id,
    }
    return [
        {**{name: getattr(a, name) for name in a.__slots__}, **shared} for a in group.appointments
    ]


@functools.cache
def _connection() -> psycopg.Connection:
    """One connection per pool process, opened on its first task (after the fork)."""
    return psycopg.connect(os.environ["BENCH_DATABASE_URL"], autocommit=True)


def __getattr__(name: str) -> Celery:
    """`app`, built on first use from BENCH_BROKER_URL (servers.baseline_env sets it): the
    Celery worker and the Flask view use it; the benchmark itself calls make_app."""
    if name != "app":
        raise AttributeError(name)
    return _app()


@functools.cache
def _app() -> Celery:
    return make_app(os.environ["BENCH_BROKER_URL"])
