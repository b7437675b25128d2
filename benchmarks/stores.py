"""The Redis databases (10-13) and Postgres databases (zi_bench_*) a run owns: emptied, dropped.

Redis and Postgres are found, or embedded, the way the test suite finds them (the same defaults,
tests/fixtures/services.py; ZI_BENCH_REDIS_URL and ZI_BENCH_POSTGRES_URL override them); an
embedded server keeps its data in .zenoti-ingest-test/bench and stops when the run exits.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import redis
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fixtures, as the suite's
from tests.fixtures import clones
from tests.fixtures import services as found
from zenoti_ingest import migrate

SERVICES = found.Services(
    os.environ.get("ZI_BENCH_REDIS_URL", found.TEST_REDIS_URL),
    os.environ.get("ZI_BENCH_POSTGRES_URL", found.TEST_DATABASE_URL),
    found.DATA_DIR / "bench",
)
atexit.register(SERVICES.stop)
REDIS_DATABASES = range(10, 14)
DATABASE_PREFIX = "zi_bench_"


def redis_url(number: int) -> str:
    if number not in REDIS_DATABASES:
        raise ValueError(f"the benchmark owns Redis databases 10-13 only, not {number}")
    return found.with_db(SERVICES.redis().url, number)


def database_url(name: str) -> str:
    if not name.startswith(DATABASE_PREFIX):
        raise ValueError(f"benchmark databases are named {DATABASE_PREFIX}*, not {name}")
    return make_conninfo(SERVICES.postgres().url, dbname=name)


@contextlib.contextmanager
def redis_database(number: int) -> Iterator[redis.Redis]:
    """A client on an emptied Redis database of ours, emptied again afterwards."""
    client = redis.Redis.from_url(redis_url(number))
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@contextlib.contextmanager
def database(name: str) -> Iterator[str]:
    """A freshly created, migrated database; dropped afterwards."""
    url = database_url(name)
    _drop(name)
    migrate.migrate(url)
    try:
        yield url
    finally:
        _drop(name)


def celery_queue_length(client: redis.Redis) -> int:
    """Messages waiting in Celery's default queue (kombu keeps one list per priority step)."""
    return sum(client.llen(key) for key in client.scan_iter(match="celery*", _type="list"))


def query(url: str, statement: str, params: dict | None = None) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(statement, params).fetchall()


def scalar(url: str, statement: str, params: dict | None = None) -> object:
    return query(url, statement, params)[0][0]


def maintenance_url() -> str:
    return make_conninfo(SERVICES.postgres().url, dbname="postgres")


def _drop(name: str) -> None:
    with psycopg.connect(maintenance_url(), autocommit=True) as conn:
        clones.drop(conn, name)
