"""Replaying dead letters and reprocessing archived deliveries, in the worker's batch code."""

from __future__ import annotations

import dataclasses

from tests.fixtures import samples
from tests.fixtures.database import delivery, fetch, write
from worker.pipeline import batch
from zenoti_ingest import contract, errors

STARTED = samples.envelope(
    "Appointment.Started",
    samples.repaired_json("appointment-started"),
    "zen-1",
    "2024-01-01T10:00:00Z",
)


def make_dead(pool, d: contract.Delivery, attempts: int = 11) -> None:
    """Archive `d` as a dead letter, as a worker does after too many crashed attempts."""
    item = batch.reject(batch.unparsed(d, attempts), errors.RetriesExhausted("gave up"))
    assert batch.write(pool, [item]) == {d.ingest_id: "dead"}


def row(url: str, ingest_id: str) -> tuple:
    [found] = fetch(
        url,
        "SELECT status, attempts, first_failed_at IS NOT NULL, failure_class"
        " FROM webhook_events WHERE ingest_id = %(id)s",
        {"id": ingest_id},
    )
    return found


def test_replayed_dead_letter_is_applied_and_keeps_its_attempts(pool, settings):
    """A dead letter sent again through the same code is processed; attempts add up."""
    d = delivery(STARTED)
    make_dead(pool, d)
    assert row(settings.database_url, d.ingest_id) == ("dead", 11, True, "retries_exhausted")
    replay = dataclasses.replace(d, mode=contract.REPLAY)
    assert write(pool, replay) == {d.ingest_id: "processed"}
    assert row(settings.database_url, d.ingest_id) == ("processed", 12, False, None)
    assert fetch(settings.database_url, "SELECT count(*) FROM appointments") == [(1,)]


def test_replaying_twice_applies_once(pool, settings):
    """A second replay of the same dead letter finds it settled and changes nothing."""
    d = delivery(STARTED)
    make_dead(pool, d)
    replay = dataclasses.replace(d, mode=contract.REPLAY)
    write(pool, replay)
    assert write(pool, replay) == {d.ingest_id: batch.ALREADY_ARCHIVED}
    assert fetch(settings.database_url, "SELECT count(*) FROM events") == [(1,)]


def test_replay_of_an_event_that_arrived_again_meanwhile_is_a_duplicate(pool, settings):
    """Zenoti redelivered the event while it sat dead: the replay is a duplicate."""
    dead, again = delivery(STARTED), delivery(STARTED)
    make_dead(pool, dead)
    assert write(pool, again) == {again.ingest_id: "processed"}
    replay = dataclasses.replace(dead, mode=contract.REPLAY)
    assert write(pool, replay) == {dead.ingest_id: "duplicate"}


def test_replay_that_fails_again_stays_dead_with_its_history(pool, settings):
    """Still broken: dead again, attempts added, the first failure time kept."""
    d = delivery(samples.printed_body("appointment-started"), "Appointment.Started")
    write(pool, d)
    [(first,)] = fetch(settings.database_url, "SELECT first_failed_at FROM webhook_events")
    write(pool, dataclasses.replace(d, mode=contract.REPLAY))
    [(status, attempts, first_again, last)] = fetch(
        settings.database_url,
        "SELECT status, attempts, first_failed_at, last_failed_at FROM webhook_events",
    )
    assert (status, attempts, first_again) == ("dead", 2, first)
    assert last > first


def test_reprocess_projects_again_without_archiving_again(pool, settings):
    """Reprocessing a processed delivery re-runs its projection; its archive row stays."""
    d = delivery(STARTED)
    write(pool, d)
    with_changes = dataclasses.replace(d, mode=contract.REPROCESS)
    assert write(pool, with_changes) == {d.ingest_id: "reprocessed"}
    assert fetch(
        settings.database_url, "SELECT status, count(*) FROM webhook_events GROUP BY 1"
    ) == [("processed", 1)]
