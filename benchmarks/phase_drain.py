"""Phase 2: a pre-loaded backlog drained by our worker, and by one Celery task per webhook."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import procs
import psycopg
import redis
import resources
import servers
import stores
import verify
from baselines import celery_stack
from payloads import DataSet

from zenoti_ingest import stream

OURS_REDIS_DB, BASELINE_REDIS_DB = 11, 12
PRELOAD_CHUNK = 1_000
MIN_RATE = 100  # deliveries/s below which a drain is called stuck
PLAIN_DRAIN = [sys.executable, "-m", "baselines.plain_drain"]
BASELINE_WORKER = [
    sys.executable,
    "-m",
    "celery",
    "--app",
    "baselines.celery_stack",
    "worker",
    "--pool",
    "prefork",
    "--concurrency",
    "2",
    "--hostname",
    "zi-bench-baseline@%h",
    "--loglevel",
    "WARNING",
    "--without-gossip",
    "--without-mingle",
]


@dataclass(frozen=True)
class Drain:
    """How fast a worker settled a backlog, timed from its first settled delivery to the last
    (its start-up, launch to first, is reported apart)."""

    total: int
    startup_seconds: float
    seconds: float
    rate: float  # deliveries settled per second
    usage: resources.Usage  # the worker's process tree, from the first settled to the last


@dataclass(frozen=True)
class OursResult:
    drain: Drain
    archive: verify.Archive
    appointments: verify.Appointments


@dataclass(frozen=True)
class PlainResult:
    drain: Drain
    archive: verify.Archive


@dataclass(frozen=True)
class BaselineResult:
    drain: Drain
    appointments: verify.Appointments


WORKER = [procs.executable("zenoti-ingest"), "worker"]


def run_ours(group: procs.Group, dataset: DataSet) -> OursResult:
    """Our Celery worker (prefork, concurrency 2) drains the backlog."""
    procs.say(f"drain: ours, {len(dataset.items):,} deliveries pre-loaded in the stream")
    drain, archive, appointments = _drain_stream(
        group, dataset, "ours-worker-drain", WORKER, "zi_bench_drain"
    )
    procs.say(
        f"  {drain.rate:,.0f} events/s; {archive.describe()}; "
        f"appointments {appointments.describe()}"
    )
    return OursResult(drain, archive, appointments)


def run_plain(group: procs.Group, dataset: DataSet) -> PlainResult:
    """The same backlog drained by one plain process (no Celery), same code path."""
    procs.say(f"drain: one plain process, no Celery, {len(dataset.items):,} deliveries pre-loaded")
    drain, archive, _ = _drain_stream(group, dataset, "plain-drain", PLAIN_DRAIN, "zi_bench_plain")
    procs.say(f"  {drain.rate:,.0f} events/s; {archive.describe()}")
    return PlainResult(drain, archive)


def _drain_stream(
    group: procs.Group, dataset: DataSet, name: str, command: list[str], database: str
) -> tuple[Drain, verify.Archive, verify.Appointments]:
    """Pre-load our stream, time `command` draining it, then check what it wrote."""
    total = len(dataset.items)
    redis_url = stores.redis_url(OURS_REDIS_DB)
    with stores.redis_database(OURS_REDIS_DB) as client, stores.database(database) as database_url:
        preload_stream(client, dataset)
        with group.scope():
            launched = time.monotonic()
            worker = group.start(name, command, servers.ours_env(redis_url, database_url))
            key = stream.Keys.of(servers.OURS).deliveries
            drain = time_drain(worker, total, lambda: total - client.xlen(key), launched)
        return (
            drain,
            verify.archive(database_url, dataset),
            verify.appointments(database_url, dataset),
        )


def run_baseline(group: procs.Group, dataset: DataSet) -> BaselineResult:
    total = len(dataset.items)
    procs.say(f"drain: one Celery task per webhook, {total:,} messages pre-loaded")
    redis_url = stores.redis_url(BASELINE_REDIS_DB)
    with (
        stores.redis_database(BASELINE_REDIS_DB) as client,
        stores.database("zi_bench_celery") as database_url,
        psycopg.connect(database_url, autocommit=True) as conn,
    ):
        conn.execute(celery_stack.ARCHIVE_TABLE)
        preload_celery(redis_url, dataset)
        if (queued := stores.celery_queue_length(client)) != total:
            raise RuntimeError(f"{queued} Celery messages queued for {total} published")
        with group.scope():
            launched = time.monotonic()
            worker = group.start(
                "baseline-worker", BASELINE_WORKER, servers.baseline_env(redis_url, database_url)
            )
            drain = time_drain(worker, total, lambda: _count(conn, "bench_archive"), launched)
        result = BaselineResult(drain, verify.appointments(database_url, dataset))
    procs.say(f"  {drain.rate:,.0f} events/s; appointments {result.appointments.describe()}")
    return result


def preload_stream(
    client: redis.Redis, dataset: DataSet, prefix: str = servers.OURS.redis_prefix
) -> None:
    """XADD every delivery as the ingress would (Delivery.to_fields), pipelined."""
    key = stream.Keys(prefix).deliveries
    for start in range(0, len(dataset.items), PRELOAD_CHUNK):
        pipe = client.pipeline(transaction=False)
        for item in dataset.items[start : start + PRELOAD_CHUNK]:
            pipe.xadd(key, stream.encode(item.delivery))
        pipe.execute()


def preload_celery(broker_url: str, dataset: DataSet) -> None:
    """One Celery message per delivery, published with apply_async as the Flask view does."""
    app = celery_stack.make_app(broker_url)
    task = app.tasks[celery_stack.TASK_NAME]
    with app.producer_or_acquire() as producer:
        for item in dataset.items:
            task.apply_async(args=(item.delivery.body.decode(),), producer=producer)


def time_drain(
    worker: procs.Proc, total: int, settled: Callable[[], int], launched: float
) -> Drain:
    first = procs.wait_until(
        settled, timeout=120, what="the first settled delivery", watch=[worker]
    )
    started = time.monotonic()
    with resources.UsageWatch([worker]) as watch:
        procs.wait_until(
            lambda: settled() >= total,
            timeout=120 + total / MIN_RATE,
            what=f"all {total:,} deliveries to be settled",
            watch=[worker],
        )
        ended = time.monotonic()
    seconds = ended - started
    rate = (total - first) / seconds if first < total else total / (ended - launched)
    return Drain(total, started - launched, seconds, rate, *watch.usage())


def _count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
