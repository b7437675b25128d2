"""Retries of a batch that hit a transient error: bounded by time, not by the crash counter."""

from __future__ import annotations

import dataclasses

import pytest
import redis

from tests.fixtures import samples
from tests.fixtures.database import delivery, fetch
from worker.pipeline import batch, drain
from zenoti_ingest import errors, stream

BODY = samples.repaired_body("appointment-started")


@pytest.fixture
def drainer(settings, pool):
    client = redis.Redis.from_url(settings.redis_url)
    made = drain.Drainer(settings, client, pool)
    made.stream.ensure_group()
    client.xadd(
        stream.Keys.of(settings).deliveries, stream.encode(delivery(BODY, "Appointment.Started"))
    )
    return made


def fail_once(monkeypatch) -> None:
    """The next batch write fails as a deadlock would; later ones go through."""
    real = batch.write
    calls = []

    def write(pool, items):
        calls.append(1)
        if len(calls) == 1:
            raise errors.TransientError("postgres: DeadlockDetected")
        return real(pool, items)

    monkeypatch.setattr(batch, "write", write)


def times_delivered(settings) -> int:
    client = redis.Redis.from_url(settings.redis_url)
    [entry] = client.xpending_range(
        stream.Keys.of(settings).deliveries, stream.Keys.of(settings).group, "-", "+", 10
    )
    return entry["times_delivered"]


def test_a_transient_failure_is_retried_without_counting_as_a_crash(drainer, settings, monkeypatch):
    """The retry takes the entry again with its delivery count unchanged, and settles it."""
    fail_once(monkeypatch)
    with pytest.raises(errors.TransientError):
        drainer.round("c", lambda: True)
    assert times_delivered(settings) == 1
    assert drainer.round("c", lambda: True).deliveries == 1
    assert fetch(settings.database_url, "SELECT status, attempts FROM webhook_events") == [
        ("processed", 1)
    ]
    assert not redis.Redis.from_url(settings.redis_url).exists(f"{settings.redis_prefix}:failing")


def test_retries_end_in_a_dead_letter_after_retry_for_seconds(drainer, settings, pool, monkeypatch):
    """Past ZENOTI_INGEST_RETRY_FOR_SECONDS of transient failures: retries_exhausted."""
    fail_once(monkeypatch)
    with pytest.raises(errors.TransientError):
        drainer.round("c", lambda: True)
    drainer.settings = dataclasses.replace(settings, retry_for_seconds=1e-6)
    drainer.round("c", lambda: True)
    [(status, failure_class)] = fetch(
        settings.database_url, "SELECT status, failure_class FROM webhook_events"
    )
    assert (status, failure_class) == ("dead", "retries_exhausted")


def test_a_crash_while_retrying_counts(drainer, settings, monkeypatch):
    """A retry that never returns (its process died) counts as a delivery, so a poison that
    first hit a transient error still reaches its bounded number of attempts."""
    fail_once(monkeypatch)
    with pytest.raises(errors.TransientError):
        drainer.round("c", lambda: True)
    drainer.stream.take("c", drainer.stream.pending("c", 10))  # taken, then the process died
    assert times_delivered(settings) == 1
    [again] = drainer.stream.take("c", drainer.stream.pending("c", 10))
    assert (again.times_delivered, again.failing_since) == (2, None)
