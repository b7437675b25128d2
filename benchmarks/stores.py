"""The Redis databases (10-13) and Postgres databases (zi_bench_*) a run owns: emptied, dropped."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import psycopg
import redis
from psycopg import sql as pgsql
from psycopg.conninfo import make_conninfo

from zenoti_ingest import migrate

REDIS_BASE_URL = os.environ.get("ZI_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
POSTGRES_URL = os.environ.get("ZI_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_DATABASES = range(10, 14)
DATABASE_PREFIX = "zi_bench_"


def redis_url(number: int) -> str:
    if number not in REDIS_DATABASES:
        raise ValueError(f"the benchmark owns Redis databases 10-13 only, not {number}")
    return f"{REDIS_BASE_URL.rstrip('/')}/{number}"


def database_url(name: str) -> str:
    if not name.startswith(DATABASE_PREFIX):
        raise ValueError(f"benchmark databases are named {DATABASE_PREFIX}*, not {name}")
    return make_conninfo(POSTGRES_URL, dbname=name)


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
    return make_conninfo(POSTGRES_URL, dbname="postgres")


def _drop(name: str) -> None:
    with psycopg.connect(maintenance_url(), autocommit=True) as conn:
        conn.execute(
            pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name))
        )
