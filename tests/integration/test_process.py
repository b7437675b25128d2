"""Batches into real Postgres: archive, deduplicate, order, dead letters, isolation."""

from __future__ import annotations

import itertools
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fixtures import samples
from tests.fixtures.database import delivery, fetch, write
from worker.pipeline import batch

STARTED_AT = "2022-02-21T18:31:00.0000001Z"
COMPLETED_AT = "2022-02-21T19:31:00.1234567Z"


def appointment_event(event_type: str, delivery_id: str, timestamp: str, **changes) -> bytes:
    data = samples.repaired_json(samples.page_of(event_type))
    data["appointments"][0].update(changes)
    return samples.envelope(event_type, data, delivery_id, timestamp)


def test_delivery_archived_byte_for_byte_and_upserted(pool, settings):
    """A processed delivery keeps its exact body and lands as one appointment row."""
    body = samples.repaired_body("appointment-started")
    d = delivery(body, "Appointment.Started")
    assert write(pool, d) == {d.ingest_id: "processed"}
    [(status, stored, event_type)] = fetch(
        settings.database_url, "SELECT status, body, event_type FROM webhook_events"
    )
    assert (status, bytes(stored), event_type) == ("processed", body, "Appointment.Started")
    [(appointment_id, row_status, progress)] = fetch(
        settings.database_url, "SELECT appointment_id, status, progress FROM appointments"
    )
    assert (str(appointment_id), row_status, progress) == (
        "01d2dbac-51ad-4a5c-a252-40eaf47dd3a0",
        "started",
        1,
    )


def test_redeliveries_are_duplicates_and_change_nothing(pool, settings):
    """The same envelope id again, in the same batch or a later one, is a duplicate."""
    first = delivery(appointment_event("Appointment.Started", "d1", STARTED_AT))
    again = delivery(appointment_event("Appointment.Started", "d1", STARTED_AT))
    later = delivery(appointment_event("Appointment.Started", "d1", STARTED_AT))
    assert write(pool, first, again) == {first.ingest_id: "processed", again.ingest_id: "duplicate"}
    assert write(pool, later) == {later.ingest_id: "duplicate"}
    assert fetch(
        settings.database_url, "SELECT status, count(*) FROM webhook_events GROUP BY 1 ORDER BY 1"
    ) == [("duplicate", 2), ("processed", 1)]


def test_an_entry_seen_again_after_commit_is_settled_not_reapplied(pool, settings):
    """The stream may hand out an entry whose batch committed: nothing is written twice."""
    d = delivery(appointment_event("Appointment.Started", "d1", STARTED_AT))
    write(pool, d)
    assert write(pool, d) == {d.ingest_id: batch.ALREADY_ARCHIVED}
    assert fetch(settings.database_url, "SELECT count(*) FROM webhook_events") == [(1,)]


def test_bare_body_redelivery_is_a_duplicate(pool, settings):
    """Without an envelope, the same body on the same path is the same delivery."""
    body = samples.repaired_body("appointment-started")
    a, b = delivery(body, "Appointment.Started"), delivery(body, "Appointment.Started")
    write(pool, a)
    assert write(pool, b) == {b.ingest_id: "duplicate"}


def final_state(url: str) -> list[tuple]:
    return fetch(
        url,
        "SELECT appointment_id, status, progress, last_event_at, therapist_name"
        " FROM appointments ORDER BY 1",
    )


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_final_state_does_not_depend_on_delivery_order(order, pool, settings):
    """Completed, Started (older) and a redelivery, in any order, one at a time: completed."""
    events = [
        appointment_event("Appointment.Started", "s1", STARTED_AT, therapist_name="A"),
        appointment_event(
            "Appointment.Completed",
            "c1",
            COMPLETED_AT,
            therapist_name="B",
            id="01d2dbac-51ad-4a5c-a252-40eaf47dd3a0",
        ),
        appointment_event("Appointment.Started", "s1", STARTED_AT, therapist_name="A"),
    ]
    for index in order:
        write(pool, delivery(events[index]))
    [(_, status, progress, _, therapist)] = final_state(settings.database_url)
    assert (status, progress, therapist) == ("completed", 2, "B")


def test_bare_bodies_order_by_progress_then_receipt(pool, settings):
    """With no event_timestamp, a later-received Started never undoes a Completed."""
    completed = samples.repaired_json("appointment-completed")
    started = samples.repaired_json("appointment-started")
    started["appointments"][0]["id"] = completed["appointments"][0]["id"]
    write(pool, delivery(json.dumps(completed).encode(), "Appointment.Completed", 1_000))
    write(pool, delivery(json.dumps(started).encode(), "Appointment.Started", 2_000))
    [(_, status, progress, _, _)] = final_state(settings.database_url)
    assert (status, progress) == ("completed", 2)


def test_concurrent_batches_converge_to_the_in_order_state(pool, settings):
    """Many workers' batches over the same hot appointments: the newest event wins each."""
    ids = [str(uuid.uuid4()) for _ in range(20)]
    bodies = []
    for n in range(200):
        appointment = ids[n % len(ids)]
        when = f"2024-01-01T00:00:{n // 4:02d}.{n:07d}Z"
        bodies.append(
            appointment_event(
                "Appointment.Started", f"e{n}", when, id=appointment, appointment_progress=n
            )
        )
    batches = [[delivery(b) for b in bodies[i::4]] for i in range(4)]
    with ThreadPoolExecutor(4) as executor:
        list(executor.map(lambda batch: write(pool, *batch), batches))
    progress = dict(
        fetch(settings.database_url, "SELECT appointment_id::text, progress FROM appointments")
    )
    assert progress == {a: max(n for n in range(200) if ids[n % 20] == a) for a in ids}


def test_bad_delivery_is_dead_with_a_reason_and_the_batch_commits(pool, settings):
    """Malformed and mistyped bodies become dead letters; the good one beside them lands."""
    good = delivery(appointment_event("Appointment.Started", "ok", STARTED_AT))
    broken = delivery(samples.printed_body("appointment-started"), "Appointment.Started")
    mistyped = delivery(
        appointment_event("Appointment.Started", "bad", STARTED_AT, appointment_type="two")
    )
    statuses = write(pool, good, broken, mistyped)
    assert statuses == {
        good.ingest_id: "processed",
        broken.ingest_id: "dead",
        mistyped.ingest_id: "dead",
    }
    dead = dict(
        fetch(
            settings.database_url,
            "SELECT failure_class, error FROM webhook_events WHERE status = 'dead'",
        )
    )
    assert dead["parse"].startswith("body is not valid JSON")
    assert dead["schema"] == "appointments.0.appointment_type: Not a valid integer (got string)"


def test_value_postgres_refuses_sinks_only_its_own_delivery(pool, settings):
    """A NUL character (Postgres text refuses it) dead-letters that delivery alone."""
    good = delivery(appointment_event("Appointment.Started", "ok", STARTED_AT))
    nul = delivery(
        appointment_event(
            "Appointment.Started",
            "nul",
            STARTED_AT,
            id=str(uuid.uuid4()),
            therapist_name="Re\u0000nu",
        )
    )
    assert write(pool, good, nul) == {good.ingest_id: "processed", nul.ingest_id: "dead"}
    [(failure_class, error)] = fetch(
        settings.database_url, "SELECT failure_class, error FROM webhook_events WHERE status='dead'"
    )
    assert failure_class == "database" and "Renu" not in error
    assert len(final_state(settings.database_url)) == 1
