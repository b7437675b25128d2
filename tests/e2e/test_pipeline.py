"""End to end: a real HTTP server and a real `celery worker` process into Postgres."""

from __future__ import annotations

import uuid

import psycopg
import redis

from tests.fixtures import samples
from tests.fixtures.processes import wait_for
from zenoti_ingest import stream


def query(settings, sql: str) -> list[tuple]:
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute(sql).fetchall()


def statuses(settings) -> dict[str, str]:
    return dict(query(settings, "SELECT ingest_id::text, status FROM webhook_events"))


def test_started_sample_lands_as_an_appointment_row(pipeline):
    """The README's curl: the Appointment.Started sample posted to its URL becomes a row."""
    pipeline.start("serve")
    pipeline.start("worker")
    status, answer = pipeline.post(
        samples.repaired_body("appointment-started"), "Appointment.Started"
    )
    assert status == 202
    row = wait_for(
        lambda: query(pipeline.settings, "SELECT status, therapist_name FROM appointments"),
        what="the appointment",
    )
    assert row == [("started", "RENU K")]
    assert statuses(pipeline.settings) == {answer["ingest_id"]: "processed"}


def test_duplicates_out_of_order_and_a_dead_letter(pipeline):
    """Completed, an older Started, a redelivery and a malformed body through real processes:
    the row stays completed, the redelivery is a duplicate, the malformed body is dead."""
    pipeline.start("serve")
    pipeline.start("worker")
    appointment = str(uuid.uuid4())

    def event(event_type: str, delivery_id: str, timestamp: str) -> bytes:
        page = "appointment-completed" if "Completed" in event_type else "appointment-started"
        data = samples.repaired_json(page)
        data["appointments"][0]["id"] = appointment
        return samples.envelope(event_type, data, delivery_id, timestamp)

    bodies = [
        (event("Appointment.Completed", "c", "2024-05-01T10:00:00.0000002Z"), ""),
        (event("Appointment.Started", "s", "2024-05-01T09:00:00.0000001Z"), ""),
        (event("Appointment.Completed", "c", "2024-05-01T10:00:00.0000002Z"), ""),
        (samples.printed_body("appointment-completed"), "Appointment.Completed"),
    ]
    ids = [pipeline.post(body, hint, method="PUT")[1]["ingest_id"] for body, hint in bodies]
    wait_for(lambda: len(statuses(pipeline.settings)) == 4, what="four settled deliveries")
    assert [statuses(pipeline.settings)[i] for i in ids] == [
        "processed",
        "processed",
        "duplicate",
        "dead",
    ]
    assert query(pipeline.settings, "SELECT status, progress FROM appointments") == [
        ("completed", 2)
    ]
    [(failure_class, error)] = query(
        pipeline.settings, "SELECT failure_class, error FROM webhook_events WHERE status = 'dead'"
    )
    assert failure_class == "parse" and "line 25 column 23" in error


def test_deliveries_held_by_a_killed_worker_come_back(pipeline):
    """SIGKILL a worker holding unacknowledged deliveries: a new worker settles them all."""
    settings = pipeline.settings
    pipeline.start("serve")
    data = samples.repaired_json("appointment-started")
    accepted = []
    for n in range(300):
        data["appointments"][0]["id"] = str(uuid.uuid4())
        body = samples.envelope("Appointment.Started", data, f"k{n}", "2024-01-01T00:00:00Z")
        accepted.append(pipeline.post(body)[1]["ingest_id"])
    # Simulate a worker that claimed the entries and died before acknowledging them.
    client = redis.Redis.from_url(settings.redis_url)
    client.xgroup_create(
        stream.Keys.of(settings).deliveries, stream.Keys.of(settings).group, id="0"
    )
    client.xreadgroup(
        stream.Keys.of(settings).group,
        "dead-host:0",
        {stream.Keys.of(settings).deliveries: ">"},
        count=1000,
    )
    pipeline.start("worker")
    settled = wait_for(
        lambda: len(statuses(settings)) == len(accepted) and statuses(settings),
        timeout=60,
        what="the dead consumer's deliveries to be reclaimed",
    )
    assert set(settled) == set(accepted)
    assert set(settled.values()) == {"processed"}
    assert (
        client.xpending(stream.Keys.of(settings).deliveries, stream.Keys.of(settings).group)[
            "pending"
        ]
        == 0
    )
    logged = pipeline.logs()
    assert "deliveries_reclaimed" in logged
    assert "RENU K" not in logged  # personal data never reaches the logs
