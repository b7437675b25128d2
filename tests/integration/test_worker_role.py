"""The least-privilege worker role of deploy/worker-role.sql is enough for the worker."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from tests.fixtures import samples
from tests.fixtures.database import delivery, fetch, write
from zenoti_ingest import db

ROLE_SQL = Path(__file__).resolve().parents[2] / "deploy" / "worker-role.sql"


def test_worker_role_can_process_replay_and_nothing_more(settings):
    """As zenoti_worker, a batch with a processed and a dead delivery commits; the role can't
    create tables or delete events."""
    with psycopg.connect(settings.database_url, autocommit=True) as owner:
        owner.execute(ROLE_SQL.read_text())
    # The pool's connections take the role, as a worker given that role's URL would.
    role_url = make_conninfo(settings.database_url, options="-crole=zenoti_worker")
    role_settings = dataclasses.replace(settings, database_url=role_url)
    good = delivery(samples.repaired_body("appointment-started"), "Appointment.Started")
    bad = delivery(b"{", "Appointment.Started")
    with db.create_pool(role_settings) as pool:
        assert write(pool, good, bad) == {good.ingest_id: "processed", bad.ingest_id: "dead"}
        with pool.connection() as conn:
            for forbidden in (
                "CREATE TABLE x (id int)",
                "DELETE FROM events",
                "DROP TABLE appointments",
            ):
                try:
                    conn.execute(forbidden)
                except psycopg.errors.InsufficientPrivilege:
                    conn.rollback()
                else:
                    raise AssertionError(f"zenoti_worker may run {forbidden}")
    assert fetch(settings.database_url, "SELECT count(*) FROM appointments") == [(1,)]
