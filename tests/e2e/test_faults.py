"""The fault matrix, small: one fault per test, injected under a steady shuffled stream of
deliveries through real ingress and worker processes, each scenario on its own Redis (appendonly)
and Postgres database (tests/fixtures/chaos/; `python benchmarks/chaos.py` runs it larger).

Every test then proves the same things: every delivery answered 202 settled (processed,
duplicate, or dead with a reason; none lost, none pending), each envelope id was applied by
exactly one processed copy, and `appointments` holds exactly the newest accepted event per
appointment (no event applied twice, no older state over a newer one), within a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.chaos import driver, faults, labs, verify
from zenoti_ingest import services

SMALL = faults.Size(deliveries=250, rate=50, refuse_seconds=3, settle_seconds=60, batch=40)
RECOVER_SECONDS = 60


@pytest.fixture(scope="module")
def chaos_run(
    tmp_path_factory: pytest.TempPathFactory, postgres_service: services.Service
) -> Iterator[driver.Run]:
    """A run for this module on the suite's Postgres: a migrated template database; each
    scenario clones its own."""
    run = driver.Run(tmp_path_factory.mktemp("chaos"), postgres_service.url)
    yield run
    run.close()


def assert_clean(outcome: verify.Outcome, ignore: set[str] = frozenset()) -> None:
    problems = [p for p in outcome.problems if not any(i in p for i in ignore)]
    assert not problems, "\n".join([*problems[:20], f"logs: {outcome.log_dir}"])
    assert outcome.lost == 0
    assert outcome.accepted >= SMALL.deliveries
    assert outcome.processed + outcome.duplicates + outcome.dead == outcome.accepted
    assert outcome.recover_seconds is not None and outcome.recover_seconds < RECOVER_SECONDS


def test_worker_killed_mid_batch_restarts_under_the_same_name(chaos_run):
    """A worker SIGKILLed (its whole process group) while holding a batch it has not
    acknowledged: restarted under the same name, it takes the entries back from its own pending
    list (once the dead worker's slot leases have expired) and settles them once each."""
    outcome = chaos_run.scenario("worker-same-name", SMALL)
    assert_clean(outcome)
    assert outcome.wrongly_applied == 0
    assert outcome.details["held"] >= SMALL.batch // 2


def test_worker_killed_mid_batch_is_reclaimed_by_another_worker(chaos_run):
    """A worker SIGKILLed mid-batch and never coming back: a worker with another name claims its
    entries (XAUTOCLAIM) once they have been idle ZENOTI_INGEST_CLAIM_IDLE_SECONDS (5 s here)."""
    outcome = chaos_run.scenario("worker-new-name", SMALL)
    assert_clean(outcome)
    assert outcome.wrongly_applied == 0
    assert outcome.details["held"] >= SMALL.batch // 2
    assert outcome.details["reclaimed_logged"] > 0


def test_ingress_workers_killed_under_load(chaos_run):
    """SIGKILLing the ingress's processes fails the requests in flight (no 202: the sender posts
    them again), and every delivery that did get a 202 lands. (granian exits when a worker
    dies; the harness restarts it, as a supervisor would.)"""
    outcome = chaos_run.scenario("ingress", SMALL)
    assert_clean(outcome)
    assert outcome.wrongly_applied == 0


def test_redis_restarted_under_load(chaos_run):
    """Redis stopped (SIGTERM) and started again under load, appendonly with appendfsync
    everysec: every entry accepted before the restart is still there and settles; requests
    refused meanwhile got no 202."""
    outcome = chaos_run.scenario("redis-restart", SMALL)
    assert_clean(outcome)
    assert outcome.wrongly_applied == 0


def test_redis_crash_loses_nothing_with_appendfsync_always(chaos_run):
    """Redis SIGKILLed under load with appendfsync always: a 202 was answered only after its
    entry was on disk, so nothing accepted is lost."""
    outcome = chaos_run.scenario("redis-crash", SMALL)
    assert_clean(outcome)
    assert outcome.wrongly_applied == 0


def test_redis_stalled_past_the_enqueue_timeout(chaos_run):
    """Redis stops answering for longer than the ingress's enqueue timeout: a request may be
    answered 503 though its XADD was executed later (it lands without a 202), and an XADD the
    Redis client sent again puts one delivery in the stream twice; each is applied once."""
    outcome = chaos_run.scenario("redis-stall", SMALL)
    assert_clean(outcome)
    assert outcome.wrongly_applied == 0


def test_postgres_connections_terminated_mid_batch(chaos_run):
    """pg_terminate_backend on every worker connection while a batch is being written: the
    transaction rolls back, its entries stay pending, and they are written once on retry."""
    outcome = chaos_run.scenario("postgres-cut", SMALL)
    assert_clean(outcome)
    assert outcome.wrongly_applied == 0


def test_postgres_refusing_connections(chaos_run):
    """The database refuses connections for longer than a retry interval: deliveries wait in
    Redis (the ingress keeps answering 202) and are written when it accepts them again."""
    outcome = chaos_run.scenario("postgres-refused", SMALL)
    assert_clean(outcome)
    assert outcome.wrongly_applied == 0


@pytest.fixture(scope="module")
def poison(chaos_run: driver.Run) -> Iterator[verify.Outcome]:
    yield chaos_run.scenario("poison", SMALL)


def test_poison_is_dead_lettered_after_a_bounded_number_of_crashes(poison):
    """A delivery that crashes the worker process every time it is handed out ends as a dead
    letter (retries_exhausted) after at most ZENOTI_INGEST_MAX_DELIVERIES (4 here) crashes,
    never looping; everything outside its batches settles as usual."""
    status, failure_class, attempts = poison.details["poison"]
    assert (status, failure_class) == ("dead", "retries_exhausted")
    assert poison.details["crashes"] <= labs.MAX_DELIVERIES
    assert attempts == poison.details["crashes"] + 1
    assert_clean(poison, ignore=poison.details.get("batch_mate_ids", set()))


def test_poison_does_not_take_its_batch_mates_down(poison):
    """The other deliveries handed out in the poison's batches are processed (or duplicates),
    none dead-lettered with it."""
    assert poison.details.get("batch_mates")
    assert set(poison.details["batch_mates"]) <= {"processed", "duplicate"}
    assert_clean(poison)
    assert poison.wrongly_applied == 0
