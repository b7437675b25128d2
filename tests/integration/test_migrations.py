"""Migrations: applied once, safe from two processes at once, and producing sql/schema.sql."""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.fixtures import clones
from zenoti_ingest import migrate, schema_snapshot, services, sql

VERSIONS = [path.stem for path in sorted(sql.MIGRATIONS_DIR.glob("*.sql"))]
RACES = 5  # new databases the two processes migrate at once, one after the other

# A migrator process: says ready, then migrates each URL it reads and prints what it applied.
MIGRATOR = """
import json, sys
import structlog
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
from zenoti_ingest import migrate
print("ready", flush=True)
for url in sys.stdin:
    print(json.dumps(migrate.migrate(url.strip())), flush=True)
"""


@pytest.fixture
def new_database_url(
    postgres_service: services.Service, pg_admin: psycopg.Connection
) -> Iterator[Callable[[], str]]:
    """Makes URLs of databases that do not exist yet; each is dropped after the test."""
    names: list[str] = []

    def new() -> str:
        names.append(f"zenoti_test_migrations_{uuid.uuid4().hex[:12]}")
        return make_conninfo(postgres_service.url, dbname=names[-1])

    yield new
    for name in names:
        clones.drop(pg_admin, name)


@pytest.fixture(scope="module")
def migrated_schema(postgres_service: services.Service, pg_admin: psycopg.Connection) -> str:
    """The description of a database one process migrated from nothing."""
    name = f"zenoti_test_migrations_{uuid.uuid4().hex[:12]}"
    try:
        url = make_conninfo(postgres_service.url, dbname=name)
        assert migrate.migrate(url) == VERSIONS
        return schema_snapshot.describe(url)
    finally:
        clones.drop(pg_admin, name)


def test_migrating_twice_applies_nothing_the_second_time(new_database_url) -> None:
    """A missing database is created and gets every migration, each recorded once; migrating
    it again applies nothing and leaves its schema exactly as it was."""
    url = new_database_url()
    assert VERSIONS and migrate.migrate(url) == VERSIONS
    schema = schema_snapshot.describe(url)

    assert migrate.migrate(url) == []
    assert schema_snapshot.describe(url) == schema
    with psycopg.connect(url) as conn:
        recorded = conn.execute("SELECT version FROM schema_migrations ORDER BY version")
        assert [version for (version,) in recorded] == VERSIONS


def test_two_processes_migrating_a_new_database_at_once_both_succeed(
    new_database_url, migrated_schema: str, tmp_path: Path
) -> None:
    """Two processes handed the same missing database at the same moment (their interpreters
    already up) both succeed, RACES times over: one creates the database or finds it created,
    the lock lets one apply every migration while the other waits and then applies none, and
    the schema is the complete one a single migrator makes."""
    logs = [tmp_path / f"migrator-{n}.log" for n in range(2)]
    migrators = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATOR],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
        )
        for log in logs
    ]
    try:
        for migrator, log in zip(migrators, logs, strict=True):
            assert migrator.stdout.readline() == "ready\n", log.read_text()
        for race in range(RACES):
            url = new_database_url()
            for migrator in migrators:  # both get the URL before either reads it
                migrator.stdin.write(url + "\n")
            for migrator in migrators:
                migrator.stdin.flush()
            answers = [migrator.stdout.readline() for migrator in migrators]
            failed = [
                log.read_text() for answer, log in zip(answers, logs, strict=True) if not answer
            ]
            assert not failed, f"race {race}: a migrator died:\n" + "\n".join(failed)
            applied = sorted((json.loads(answer) for answer in answers), key=len)
            assert applied == [[], VERSIONS], f"race {race}"
            assert schema_snapshot.describe(url) == migrated_schema, f"race {race}"
    finally:
        for migrator in migrators:
            migrator.stdin.close()
            migrator.wait(timeout=10)
            migrator.stdout.close()


def test_migrated_schema_is_the_checked_in_schema_sql(migrated_schema: str) -> None:
    """The schema the migrations produce is the one checked in as sql/schema.sql: a migration
    that changes the schema changes that file with it, and a schema the migrations do not
    produce (a column added by hand, a migration edited after the fact) fails here."""
    checked_in = schema_snapshot.SCHEMA_FILE.read_text()
    if migrated_schema != checked_in:
        diff = difflib.unified_diff(
            checked_in.splitlines(keepends=True),
            migrated_schema.splitlines(keepends=True),
            "zenoti_ingest/sql/schema.sql (checked in)",
            "the schema the migrations produce",
        )
        pytest.fail(
            "zenoti_ingest/sql/schema.sql is not the schema the migrations produce. If the "
            f"migrations are right, regenerate it with `{schema_snapshot.WRITE_SCHEMA_COMMAND}` "
            "(that is, `.venv/bin/python -m zenoti_ingest.schema_snapshot --write-schema`) and "
            "commit it.\n" + "".join(diff),
            pytrace=False,
        )
