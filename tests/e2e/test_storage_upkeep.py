"""The running worker keeps storage bounded on its own: partitions made ahead, an old week of
the archive dropped after the retention with its dead letter kept, while deliveries flow."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg

from tests.fixtures import samples
from tests.fixtures.database import delivery, fetch, write
from tests.fixtures.processes import wait_for
from zenoti_ingest import db, storage

OLD = datetime.now(UTC) - timedelta(days=200)


def _partitions(url: str) -> set[str]:
    rows = fetch(url, "SELECT inhrelid::regclass::text FROM pg_inherits")
    return {name for (name,) in rows}


def test_a_running_worker_makes_partitions_and_expires_old_weeks(pipeline) -> None:
    """A week 200 days old (a processed delivery and a dead letter) is there when the worker
    starts; checking every second, the worker makes this week's partition and drops the old
    week, keeping the dead letter, and new deliveries land in this week's partition."""
    pipeline.settings = replace(pipeline.settings, storage_check_seconds=1.0)
    settings = pipeline.settings
    url = settings.database_url
    old_us = int(OLD.timestamp() * 1_000_000)
    with psycopg.connect(url, autocommit=True) as conn:
        storage.ensure_partitions(conn, OLD)
    with db.create_pool(settings) as pool:
        good = delivery(samples.repaired_body("appointment-started"), "Appointment.Started", old_us)
        dead = delivery(b"{not json", "Appointment.Started", old_us)
        write(pool, good, dead)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE webhook_events SET processed_at = received_at")
    old_week = f"webhook_events_p{storage.week_start(OLD):%Y%m%d}"
    this_week = f"webhook_events_p{storage.week_start(datetime.now(UTC)):%Y%m%d}"
    assert old_week in _partitions(url) and this_week not in _partitions(url)

    pipeline.start("serve")
    pipeline.start("worker")
    wait_for(
        lambda: this_week in _partitions(url) and old_week not in _partitions(url),
        what="the worker to make this week's partition and drop the old week",
    )
    assert fetch(url, "SELECT ingest_id::text, status FROM webhook_events") == [
        (dead.ingest_id, "dead")
    ]
    status, answer = pipeline.post(
        samples.repaired_body("appointment-started"), "Appointment.Started"
    )
    assert status == 202
    wait_for(
        lambda: fetch(
            url,
            f"SELECT status FROM {this_week} WHERE ingest_id = %(i)s",
            {"i": answer["ingest_id"]},
        ),
        what="a new delivery archived in this week's partition",
    )
    assert "storage_upkeep_expired" in pipeline.logs()
