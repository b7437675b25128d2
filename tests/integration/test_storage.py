"""Bounded storage: weekly partitions made ahead (several makers at once), rows the DEFAULT
partition took moved into place, expiry that keeps dead letters, and dedup past the bodies."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.fixtures import samples
from tests.fixtures.database import delivery, fetch, write
from worker.operations import deadletters
from worker.pipeline import batch
from zenoti_ingest import errors, storage

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=200)  # far past the default 90 days of the archive


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _event(delivery_id: str, appointment_id: str, event_type: str = "Appointment.Started"):
    data = samples.repaired_json(samples.page_of(event_type))
    data["appointments"][0]["appointment_id"] = appointment_id
    return samples.envelope(event_type, data, delivery_id, "2022-02-21T18:31:00Z")


def _partitions(url: str, parent: str) -> list[str]:
    return [
        name
        for (name,) in fetch(
            url,
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %(p)s::regclass ORDER BY 1",
            {"p": parent},
        )
    ]


def _expected(parent: str, now: datetime) -> list[str]:
    monday = storage.week_start(now)
    weeks = range(-1, storage.WEEKS_AHEAD + 1)
    return [f"{parent}_p{monday + k * storage.WEEK:%Y%m%d}" for k in weeks]


def test_several_makers_at_once_create_each_partition_once(settings) -> None:
    """Six connections ensure the partitions at the same moment: none fails, each week's
    partition of both tables is created exactly once, by one of them."""
    start = threading.Barrier(6)
    created: list[list[str]] = []
    failures: list[BaseException] = []

    def make() -> None:
        try:
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                start.wait()
                created.append(storage.ensure_partitions(conn, NOW))
        except BaseException as exc:  # reported below, with the others' results
            failures.append(exc)

    threads = [threading.Thread(target=make) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    made = sorted(name for names in created for name in names)
    expected = _expected("webhook_events", NOW) + _expected("events", NOW)
    assert made == sorted(expected)
    assert sum(1 for names in created if names) == 1
    for parent in ("webhook_events", "events"):
        assert _partitions(settings.database_url, parent) == sorted(
            [*_expected(parent, NOW), f"{parent}_default"]
        )


def test_rows_the_default_partition_took_move_into_their_week(pool, settings) -> None:
    """Written before their week had a partition, rows sit in DEFAULT; creating the week's
    partition moves them there, every byte, and the redelivery is still a duplicate."""
    first = delivery(_event("d-move", "01d2dbac-51ad-4a5c-a252-40eaf47dd3a0"), "", _us(NOW))
    assert write(pool, first) == {first.ingest_id: "processed"}
    url = settings.database_url
    assert fetch(url, "SELECT count(*) FROM webhook_events_default") == [(1,)]
    assert fetch(url, "SELECT count(*) FROM events_default") == [(1,)]
    with psycopg.connect(url, autocommit=True) as conn:
        storage.ensure_partitions(conn, NOW)
    week = f"p{storage.week_start(NOW):%Y%m%d}"
    assert fetch(url, "SELECT count(*) FROM webhook_events_default") == [(0,)]
    [(body,)] = fetch(url, f"SELECT body FROM webhook_events_{week}")
    assert bytes(body) == first.body
    assert fetch(url, f"SELECT delivery_id FROM events_{week}") == [("d-move",)]
    again = delivery(first.body, "", _us(NOW))
    assert write(pool, again) == {again.ingest_id: "duplicate"}


@pytest.fixture
def old_week(pool, settings):
    """A week 200 days ago with its own partition: a processed delivery and its redelivery,
    a dead letter, one discarded long ago and one discarded just now (all archived back then:
    a replay's or a discard's recent time would keep a row)."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        storage.ensure_partitions(conn, OLD)
        storage.ensure_partitions(conn, NOW)
    at = _us(OLD)
    processed = delivery(_event("d-old", "01d2dbac-51ad-4a5c-a252-40eaf47dd3a0"), "", at)
    repeat = delivery(processed.body, "", at + 1)
    dead, discarded_long_ago, discarded_now = (
        delivery(b"{not json " + bytes([n]), "Appointment.Started", at) for n in b"abc"
    )
    statuses = write(pool, processed, repeat, dead, discarded_long_ago, discarded_now)
    assert sorted(statuses.values()) == ["dead", "dead", "dead", "duplicate", "processed"]
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        deadletters.discard(conn, [discarded_long_ago.ingest_id, discarded_now.ingest_id], "x")
        conn.execute("UPDATE webhook_events SET processed_at = received_at")
        conn.execute(
            "UPDATE webhook_events SET discarded_at = %s WHERE ingest_id = %s",
            (OLD, discarded_long_ago.ingest_id),
        )
    return {
        "processed": processed,
        "dead": dead,
        "discarded_now": discarded_now,
        "week": f"webhook_events_p{storage.week_start(OLD):%Y%m%d}",
    }


def test_dry_run_lists_expired_partitions_and_changes_nothing(old_week, settings, invoke):
    """prune --dry-run names the expired week of each table with its rows and bytes; the
    archive keeps all its rows."""
    result = invoke("prune", "--dry-run", "--json")
    expired = {e["name"]: e for e in json.loads(result.stdout)["expired"]}
    week = expired[old_week["week"]]
    # 5 rows: processed, duplicate and discarded long ago go; dead and discarded now stay.
    assert (week["kind"], week["rows"], week["kept"]) == ("partition", 3, 2)
    assert week["bytes"] > 0
    # The event log is kept forever by default; the ledger's id is 200 days old (> 30).
    assert not any(e["table"] == "events" for e in expired.values())
    assert expired["delivery_ids"]["rows"] == 1
    assert fetch(settings.database_url, "SELECT count(*) FROM webhook_events") == [(5,)]
    assert "Would free" in invoke("prune", "--dry-run").stdout


def test_prune_drops_old_weeks_keeps_dead_letters_and_dedup(old_week, pool, settings, invoke):
    """prune drops the old week; the dead letter and the one discarded just now survive (in
    DEFAULT), with their bodies; with the ledger kept (dedup days > 200) a redelivery of the
    pruned delivery is still a duplicate."""
    long_dedup = settings.replace(dedup_days=365)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        lines: list[str] = []
        done = storage.prune(conn, long_dedup, datetime.now(UTC), lines.append)
    # The old week and its empty neighbours (made with it) go; nothing else.
    dropped = {e.name: (e.rows, e.kept) for e in done if e.table == "webhook_events"}
    assert dropped.pop(old_week["week"]) == (3, 2)
    assert set(dropped.values()) == {(0, 0)} and len(dropped) == storage.WEEKS_AHEAD + 1
    assert any(old_week["week"] in line for line in lines)
    url = settings.database_url
    assert old_week["week"] not in _partitions(url, "webhook_events")
    kept = fetch(url, "SELECT ingest_id::text, status, body FROM webhook_events ORDER BY 2")
    assert [(i, s, bytes(b)) for i, s, b in kept] == [
        (old_week["dead"].ingest_id, "dead", old_week["dead"].body),
        (old_week["discarded_now"].ingest_id, "discarded", old_week["discarded_now"].body),
    ]
    assert fetch(url, "SELECT count(*) FROM dead_letters") == [(1,)]
    # The event log is kept (0 = forever).
    assert fetch(url, "SELECT delivery_id FROM events") == [("d-old",)]
    again = delivery(old_week["processed"].body, "", _us(NOW))
    assert write(pool, again) == {again.ingest_id: "duplicate"}


def test_the_ledger_forgets_after_dedup_days_and_the_event_log_after_its_days(
    old_week, pool, settings, invoke
):
    """With the defaults (30 days) the old delivery id is forgotten; with event log days set,
    the old week of the event log goes too. The running prune says what it does."""
    shorter = settings.replace(event_log_days=100)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        done = storage.prune(conn, shorter, datetime.now(UTC))
    assert {(e.table, e.kind) for e in done} == {
        ("webhook_events", "partition"),
        ("events", "partition"),
        ("delivery_ids", "rows"),
    }
    url = settings.database_url
    assert fetch(url, "SELECT count(*) FROM delivery_ids") == [(0,)]
    assert fetch(url, "SELECT count(*) FROM events") == [(0,)]
    again = delivery(old_week["processed"].body, "", _us(NOW))
    assert write(pool, again) == {again.ingest_id: "processed"}
    assert invoke("prune").stdout.strip() == "Nothing has expired."


def test_a_dead_letter_handed_out_again_claims_no_delivery_id(pool, settings) -> None:
    """A dead letter whose ack was lost comes back from the stream and this time would apply:
    it stays the dead letter it was archived as, and its delivery id stays unclaimed, so
    Zenoti's redelivery of the event is processed (not a duplicate of a delivery never applied)."""
    body = _event("d-dead", "4d1f3a52-7c1e-4a55-9f6e-0d2b8c1e9a01")
    lost_ack = delivery(body, "", _us(NOW))
    rejected = batch.reject(batch.prepare(lost_ack, 1), errors.DataRejected("value refused"))
    assert batch.write(pool, [rejected]) == {lost_ack.ingest_id: "dead"}
    again = batch.write(pool, [batch.prepare(lost_ack, 2)])
    assert again == {lost_ack.ingest_id: batch.ALREADY_ARCHIVED}
    url = settings.database_url
    assert fetch(url, "SELECT status FROM webhook_events") == [("dead",)]
    assert fetch(url, "SELECT count(*) FROM delivery_ids") == [(0,)]
    redelivered = delivery(body, "", _us(NOW))
    assert write(pool, redelivered) == {redelivered.ingest_id: "processed"}
    # A processed delivery handed out again keeps its claim: the next copy is a duplicate.
    assert batch.write(pool, [batch.prepare(redelivered, 2)]) == {
        redelivered.ingest_id: batch.ALREADY_ARCHIVED
    }
    third = delivery(body, "", _us(NOW))
    assert write(pool, third) == {third.ingest_id: "duplicate"}


def test_a_worker_s_automatic_run_skips_while_another_prunes(old_week, settings) -> None:
    """storage.maintain (what each worker runs on its timer) does nothing while another
    maintainer holds the lock, and does the work once it is free."""
    url = settings.database_url
    with psycopg.connect(url, autocommit=True) as holder, holder.transaction():
        holder.execute("SELECT pg_advisory_xact_lock(7254017810342)")
        with psycopg.connect(url, autocommit=True) as conn:
            assert storage.prune(conn, settings, datetime.now(UTC), wait=False) == []
    assert old_week["week"] in _partitions(url, "webhook_events")
    with psycopg.connect(url, autocommit=True) as conn:
        assert storage.maintain(conn, settings, datetime.now(UTC))
    assert old_week["week"] not in _partitions(url, "webhook_events")


def test_find_says_what_remains_of_a_pruned_delivery(old_week, settings, invoke) -> None:
    """After the archive week goes, find names the delivery id as pruned with its event still
    in the event log; once the event log's week goes too, only the dedup record remains."""
    url = settings.database_url
    kept_ids = settings.replace(dedup_days=365)
    with psycopg.connect(url, autocommit=True) as conn:
        storage.prune(conn, kept_ids, datetime.now(UTC))
    said = invoke("find", "d-old").stdout
    assert "d-old: pruned from the archive" in said and "event log" in said
    with psycopg.connect(url, autocommit=True) as conn:
        storage.prune(conn, kept_ids.replace(event_log_days=100), datetime.now(UTC))
    found = json.loads(invoke("find", "d-old", "--json").stdout)
    [pruned] = found["pruned"]
    assert pruned["where"].startswith("pruned: only its dedup record remains, seen at ")
    assert pruned["seen"]["ingest_id"] == old_week["processed"].ingest_id


def test_the_ledger_keeps_an_id_while_its_body_is_archived(pool, settings) -> None:
    """Dedup days (30) shorter than the archive's (90): a delivery id 60 days old, its body
    still archived, is kept in the ledger, so a copy of it is a duplicate (one events row)."""
    at = _us(NOW - timedelta(days=60))
    first = delivery(_event("d-60", "6a0c2f1e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"), "", at)
    assert write(pool, first) == {first.ingest_id: "processed"}
    assert settings.dedup_days < 60 < settings.archive_days
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        assert storage.prune(conn, settings, datetime.now(UTC)) == []
    again = delivery(first.body, "", _us(NOW))
    assert write(pool, again) == {again.ingest_id: "duplicate"}
    assert fetch(settings.database_url, "SELECT count(*) FROM events") == [(1,)]


def test_a_prune_skips_what_another_prune_took_meanwhile(old_week, settings) -> None:
    """Each expired partition goes in a transaction of its own: another prune (a worker's)
    can take one between them. The first then skips it instead of failing on a table gone."""
    url = settings.database_url
    others: list[list[storage.Expiry]] = []

    def another_prune_first(message: str) -> None:
        if not others:
            with psycopg.connect(url, autocommit=True) as other:
                others.append(storage.prune(other, settings, datetime.now(UTC)))

    with psycopg.connect(url, autocommit=True) as conn:
        planned = storage.plan(conn, settings, datetime.now(UTC))
        done = storage.prune(conn, settings, datetime.now(UTC), another_prune_first)
    [by_the_other] = others
    assert {e.name for e in by_the_other} == {e.name for e in planned}
    assert [e for e in done if e.kind == "partition"] == []
    assert old_week["week"] not in _partitions(url, "webhook_events")
    assert fetch(url, "SELECT count(*) FROM dead_letters") == [(1,)]


def test_a_retention_of_days_keeps_the_weeks_the_workers_make(settings) -> None:
    """ARCHIVE_DAYS=1: last week's partition is past the retention, but each check makes it
    (from last week on): prune leaves it, rather than dropping and making it on every check."""
    short = settings.replace(archive_days=1, event_log_days=1)
    thursday = storage.week_start(NOW) + timedelta(days=3)  # last week: 3 days past its end
    last_week = f"webhook_events_p{storage.week_start(NOW) - storage.WEEK:%Y%m%d}"
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        storage.ensure_partitions(conn, thursday)
        assert last_week in _partitions(settings.database_url, "webhook_events")
        assert storage.plan(conn, short, thursday) == []
        assert storage.ensure_partitions(conn, thursday) == []
