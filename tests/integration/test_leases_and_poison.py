"""The drain slots' leases (their Lua compare-and-set) and the poison rules, run directly
against a real Redis and Postgres, without Celery."""

from __future__ import annotations

import dataclasses
import time

import pytest
import redis

from tests.fixtures import samples
from tests.fixtures.database import delivery, fetch
from worker.hosting import leases
from worker.pipeline import batch, drain
from zenoti_ingest import stream

BODY = samples.repaired_body("appointment-started")


@pytest.fixture
def slot_leases(redis_url, settings) -> leases.Leases:
    return leases.Leases(redis.Redis.from_url(redis_url), settings.redis_prefix, ttl_seconds=0.5)


def test_a_slot_has_one_owner(slot_leases):
    """claim gives a token only while nobody owns the slot; the owner is the token held."""
    token = slot_leases.claim("w@h", 0)
    assert token is not None and slot_leases.holds("w@h", 0, token)
    assert slot_leases.claim("w@h", 0) is None
    assert slot_leases.claim("w@h", 1) is not None  # another slot, another lease


def test_hand_over_passes_the_slot_only_from_its_owner(slot_leases):
    """The compare-and-set script: the owner's token becomes a new one; a stale token (a copy
    of a drain task that lost the slot) gets None and changes nothing."""
    first = slot_leases.claim("w@h", 0)
    second = slot_leases.hand_over("w@h", 0, first)
    assert second not in (None, first) and slot_leases.holds("w@h", 0, second)
    assert slot_leases.hand_over("w@h", 0, first) is None
    assert slot_leases.holds("w@h", 0, second)


def test_renew_extends_only_the_owners_lease(slot_leases):
    """renew keeps a long round's lease alive; a stale token can't renew; an expired lease can
    be claimed again (a lost drain task is replaced)."""
    token = slot_leases.claim("w@h", 0)
    for _ in range(3):  # 0.9 s in all, past the 0.5 s ttl: alive only through renewals
        time.sleep(0.3)
        assert slot_leases.renew("w@h", 0, token)
    assert slot_leases.holds("w@h", 0, token)
    assert not slot_leases.renew("w@h", 0, "stale")
    time.sleep(0.6)
    assert not slot_leases.holds("w@h", 0, token)
    assert slot_leases.claim("w@h", 0) is not None


def test_forget_frees_a_slot_at_once(slot_leases, redis_url, settings):
    """A restarted worker forgets its slots' leases and claims them straight away; live_slots
    counts the leases held."""
    slot_leases.claim("w@h", 0)
    slot_leases.claim("w@h", 1)
    assert leases.live_slots(redis.Redis.from_url(redis_url), settings.redis_prefix) == 2
    slot_leases.forget("w@h", 0)
    assert slot_leases.claim("w@h", 0) is not None


@pytest.fixture
def drainer(settings, pool) -> drain.Drainer:
    made = drain.Drainer(
        dataclasses.replace(settings, poison_after_deliveries=2, max_deliveries=3),
        redis.Redis.from_url(settings.redis_url),
        pool,
    )
    made.stream.ensure_group()
    return made


def crash_after_taking(drainer: drain.Drainer, consumer: str) -> None:
    """A worker takes what it holds and dies before settling it (the delivery count grows)."""
    drainer.stream.take(consumer, drainer.stream.pending(consumer, 100))


def test_a_suspect_is_taken_alone(drainer, settings, monkeypatch):
    """From poison_after_deliveries on, an entry is settled in a batch of its own, so a crash
    counts against it and not against the entries that shared its first batch."""
    client = redis.Redis.from_url(settings.redis_url)
    for _ in range(3):
        client.xadd(stream.Keys.of(settings).deliveries, stream.encode(delivery(BODY, "x")))
    drainer.stream.read_new("c", 10, 10)  # handed out once: then the worker died
    batches = []
    real_write = batch.write
    monkeypatch.setattr(
        batch, "write", lambda pool, items: batches.append(len(items)) or real_write(pool, items)
    )
    drainer.round("c", lambda: True)  # each is handed out a second time: now a suspect
    assert batches == [1, 1, 1]


def test_past_max_deliveries_an_entry_is_dead_without_being_parsed(drainer, settings):
    """An entry handed out more than max_deliveries times (it crashed the worker each time) is
    a dead letter of class retries_exhausted, and its body is not parsed again."""
    client = redis.Redis.from_url(settings.redis_url)
    client.xadd(
        stream.Keys.of(settings).deliveries,
        stream.encode(delivery(b"{not json", "Appointment.Started")),
    )
    drainer.stream.read_new("c", 10, 10)
    for _ in range(3):
        crash_after_taking(drainer, "c")
    drainer.round("c", lambda: True)
    [(status, failure_class, error)] = fetch(
        settings.database_url, "SELECT status, failure_class, error FROM webhook_events"
    )
    assert (status, failure_class) == ("dead", "retries_exhausted")
    assert "handed to a worker 5 times" in error  # not a parse error: never parsed
    assert drainer.stream.pending("c", 10) == []
