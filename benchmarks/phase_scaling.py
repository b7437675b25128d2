"""Scaling (--only scaling): one backlog drained by 1, 2 and 4 worker nodes, each component's CPU.

CPU is counted per component, apart: the workers' process trees (psutil), a redis-server of the
phase's own (INFO cpu: nothing else uses it), the Postgres backends serving the workers
(/proc/<pid>/stat of the pids pg_stat_activity names for the phase's database; the server's
WAL writer and checkpointer are not counted), and the ingress per request (its process tree
under a closed-loop load, with what its XADDs cost Redis). Then the single-node limits: XADDs/s
on one Redis (pipelined) and its CPU per XADD, and the worker's batch write on one Postgres (and
per backend core). On a 2-core machine throughput stops growing once the cores are busy; the CPU
per delivery of each component is what carries to a bigger deployment; `sizing()` turns it into
cores.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import http_load
import payloads
import phase_drain
import procs
import psutil
import redis
import resources
import servers
import stores
import verify
from plan import Plan

from tests.fixtures.chaos import servers as chaos_servers
from worker.pipeline import batch
from zenoti_ingest import db, stream

NODES = (1, 2, 4)
TARGETS = (1_000, 10_000, 50_000)  # deliveries/s the sizing table is for
BUSY = 0.7  # provision cores so that each is this busy at the target rate
XADD_SECONDS = 3.0
XADD_CHUNK = 1_000
UPSERT_WRITERS = 2  # threads writing batches at once, a connection each (one per core here)


@dataclass(frozen=True)
class Run:
    nodes: int
    rate: float  # deliveries/s, first settled to last
    worker_us: float  # CPU per delivery, each component apart
    redis_us: float
    postgres_us: float
    verified: str


@dataclass(frozen=True)
class Ingress:
    rate: float  # requests/s accepted
    cpu_us: float  # ingress process tree, per accepted request
    redis_us: float  # Redis, per accepted request (its XADD)


@dataclass(frozen=True)
class Scaling:
    total: int
    runs: list[Run]
    ingress: Ingress
    xadd_rate: float  # pipelined, one client
    xadd_us: float  # Redis CPU per XADD
    upsert_rate: float  # deliveries/s written in batches by UPSERT_WRITERS, parsing done before
    upsert_us: float  # Postgres backend CPU per delivery meanwhile
    machine: str  # how busy the machine was meanwhile (by us and by anything else)

    def markdown(self, command: str) -> str:
        lines = [
            f"## Scaling: {self.total:,} pre-loaded deliveries drained by 1, 2 and 4 worker nodes",
            "",
            f"`{command}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, on"
            f" {psutil.cpu_count()} cores shared by every process (load generator included).",
            "Each node is `zenoti-ingest worker` with concurrency 1 (a Celery node of its own);",
            "CPU is per settled delivery, each component measured apart (Postgres: the backends"
            " serving the workers; its WAL writer and checkpointer are not counted).",
            f"Machine meanwhile: {self.machine}.",
            "",
            "| worker nodes | deliveries/s | workers CPU/delivery | Redis CPU/delivery"
            " | Postgres backends CPU/delivery | checked |",
            "| --- | --- | --- | --- | --- | --- |",
            *(
                f"| {r.nodes} | {r.rate:,.0f} | {r.worker_us:,.0f} us | {r.redis_us:,.1f} us"
                f" | {r.postgres_us:,.0f} us | {r.verified} |"
                for r in self.runs
            ),
            "",
            f"- Ingress (`zenoti-ingest serve`, 2 processes, closed loop): {self.ingress.rate:,.0f}"
            f" requests/s, {self.ingress.cpu_us:,.0f} us of ingress CPU and"
            f" {self.ingress.redis_us:,.1f} us of Redis CPU per accepted request.",
            f"- One Redis, pipelined XADDs of real deliveries from one client:"
            f" {self.xadd_rate:,.0f}/s, {self.xadd_us:.1f} us of Redis CPU each: one Redis core"
            f" takes {1e6 / self.xadd_us:,.0f} XADDs/s.",
            f"- One Postgres, the worker's batch write alone ({UPSERT_WRITERS} threads, a"
            f" connection and {servers.OURS.batch_size} deliveries per transaction each, parsed"
            f" beforehand): {self.upsert_rate:,.0f} deliveries/s, {self.upsert_us:,.0f} us of"
            f" backend CPU each: one Postgres core writes {1e6 / self.upsert_us:,.0f}"
            " deliveries/s (archive row, deduplication, event and appointment upserts).",
            "",
            *self.sizing(),
        ]
        return "\n".join(lines) + "\n"

    @property
    def postgres_us(self) -> float:
        """The batch write alone: what Postgres spends per delivery, whatever the workers do."""
        return self.upsert_us

    @property
    def worker_us(self) -> float:
        """From the single node: more nodes than cores only adds contention to the figure."""
        return self.runs[0].worker_us

    @property
    def redis_per_delivery_us(self) -> float:
        """Redis, per delivery end to end: its XADD, then its read, acknowledgement, delete."""
        return self.ingress.redis_us + min(r.redis_us for r in self.runs)

    def sizing(self) -> list[str]:
        """Cores for each target rate, each component at BUSY; Redis on its one core."""
        redis_max = 1e6 / self.redis_per_delivery_us
        lines = [
            f"### Sizing (cores at {BUSY:.0%} busy; Redis is one thread)",
            "",
            "| deliveries/s | worker cores | ingress cores | Redis must sustain"
            " | Postgres must sustain | ceiling first |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for target in TARGETS:
            redis_share = target / redis_max
            postgres_cores = target * self.postgres_us / 1e6 / BUSY
            ceiling = (
                f"Redis ({redis_share:.0%} of its core): shard by source or a faster Redis"
                if redis_share > BUSY
                else "none yet; Redis next"
                if redis_share > BUSY / 2
                else "none"
            )
            lines.append(
                f"| {target:,} | {_cores(target * self.worker_us)} |"
                f" {_cores(target * self.ingress.cpu_us)} | {target:,} XADD/s + {target:,}"
                f" read+ack/s ({redis_share:.0%} of one core) | {target:,} deliveries/s"
                f" ({postgres_cores:.1f} cores) | {ceiling} |"
            )
        lines += [
            "",
            f"One Redis tops out near {redis_max:,.0f} deliveries/s (XADD, read, ack, delete"
            f" at {self.redis_per_delivery_us:.1f} us); Postgres grows with cores on one node;"
            " workers and ingresses grow by adding processes on any host.",
        ]
        return lines


def _cores(cpu_us_per_second: float) -> str:
    return f"{math.ceil(cpu_us_per_second / 1e6 / BUSY)}"


def run(group: procs.Group, plan: Plan) -> Scaling:
    dataset = payloads.drain_set(plan.scaling_total)
    redis_server = chaos_servers.RedisServer(group.log_dir / "scaling-redis", "everysec")
    redis_server.start()
    try:
        client = redis_server.client()
        with resources.MachineLoad() as machine:
            runs = [_drain(group, dataset, client, redis_server.url, n) for n in NODES]
            ingress = _ingress(group, plan, client, redis_server.url)
            xadd_rate, xadd_us = _xadd_limit(client, dataset)
            upsert_rate, upsert_us = _upsert_limit(dataset)
        client.close()
    finally:
        redis_server.stop()
    return Scaling(
        len(dataset.items),
        runs,
        ingress,
        xadd_rate,
        xadd_us,
        upsert_rate,
        upsert_us,
        machine.describe(),
    )


def _redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def _drain(
    group: procs.Group, dataset: payloads.DataSet, client: redis.Redis, redis_url: str, nodes: int
) -> Run:
    total = len(dataset.items)
    procs.say(f"scaling: {total:,} deliveries drained by {nodes} worker node(s)")
    client.flushdb()
    key = stream.Keys.of(servers.OURS).deliveries
    with stores.database("zi_bench_scaling") as database_url:
        phase_drain.preload_stream(client, dataset)
        redis_before = _redis_cpu(client)
        with group.scope():
            workers = [
                group.start(
                    f"scaling-{nodes}-worker-{i}", _worker(), _env(redis_url, database_url, i)
                )
                for i in range(nodes)
            ]
            settled = lambda: total - client.xlen(key)  # noqa: E731 (acknowledged entries are deleted)
            first = procs.wait_until(settled, timeout=120, what="a settled delivery", watch=workers)
            started = time.monotonic()
            with resources.UsageWatch(workers) as watch:
                procs.wait_until(
                    lambda: settled() >= total,
                    timeout=120 + total / phase_drain.MIN_RATE,
                    what=f"all {total:,} settled",
                    watch=workers,
                )
            seconds = time.monotonic() - started
            postgres_cpu = _backends_cpu(database_url)
        redis_cpu = _redis_cpu(client) - redis_before
        archive = verify.archive(database_url, dataset)
        appointments = verify.appointments(database_url, dataset)
    counted = total - first
    run = Run(
        nodes,
        counted / seconds,
        sum(u.cpu_seconds for u in watch.usage()) / counted * 1e6,
        redis_cpu / total * 1e6,
        postgres_cpu / total * 1e6,
        "ok" if archive.ok and appointments.ok else "MISMATCH",
    )
    procs.say(f"  {run.rate:,.0f} deliveries/s; {archive.describe()}")
    return run


def _worker() -> list[str]:
    return [procs.executable("zenoti-ingest"), "worker"]


def _env(redis_url: str, database_url: str, node: int) -> dict[str, str]:
    ours = servers.OURS.replace(
        redis_url=redis_url,
        database_url=database_url,
        host=servers.HOST,
        worker_name=f"zi-bench-scaling-{node}@%h",
        worker_concurrency=1,
    )
    return procs.env(**ours.to_env())


def _backends_cpu(database_url: str) -> float:
    """CPU seconds of the backends connected to this database (the workers' pools)."""
    pids = stores.query(
        database_url,
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    total = 0.0
    for (pid,) in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def _ingress(group: procs.Group, plan: Plan, client: redis.Redis, redis_url: str) -> Ingress:
    procs.say(f"scaling: ingress CPU per request, {plan.load_seconds} s closed loop")
    client.flushdb()
    body_file: Path = group.log_dir / "started-body.json"
    body_file.write_bytes(payloads.started_body())
    port = procs.free_port()
    env = servers.ours_env(redis_url, "", port)
    with group.scope():
        server = servers.start_server(
            group, "scaling-ingress", servers.ours_serve_command(port), env, port
        )
        redis_before = _redis_cpu(client)
        with resources.UsageWatch([server.proc]) as watch:
            load = http_load.closed_loop(
                group,
                name="scaling-load",
                url=server.webhook_url,
                body_file=body_file,
                seconds=plan.load_seconds,
                connections=plan.connections,
            )
        redis_cpu = _redis_cpu(client) - redis_before
    accepted = max(1, load.accepted)
    [usage] = watch.usage()
    return Ingress(load.rps, usage.cpu_seconds / accepted * 1e6, redis_cpu / accepted * 1e6)


def _xadd_limit(client: redis.Redis, dataset: payloads.DataSet) -> tuple[float, float]:
    """Pipelined XADDs of real deliveries for XADD_SECONDS: rate, and Redis CPU per XADD."""
    procs.say(f"scaling: XADDs on one Redis for {XADD_SECONDS:g} s, pipelined")
    client.flushdb()
    key = stream.Keys.of(servers.OURS).deliveries
    fields = [stream.encode(item.delivery) for item in dataset.items[:XADD_CHUNK]]
    before, started, added = _redis_cpu(client), time.monotonic(), 0
    while time.monotonic() - started < XADD_SECONDS:
        pipe = client.pipeline(transaction=False)
        for entry in fields:
            pipe.xadd(key, entry)
        pipe.execute()
        added += len(fields)
    seconds, cpu = time.monotonic() - started, _redis_cpu(client) - before
    client.flushdb()
    return added / seconds, cpu / added * 1e6


def _upsert_limit(dataset: payloads.DataSet) -> tuple[float, float]:
    """The worker's batch write alone, from UPSERT_WRITERS threads: deliveries/s, and Postgres
    backend CPU per delivery."""
    procs.say(f"scaling: batched writes on one Postgres, {UPSERT_WRITERS} writers")
    items = [batch.prepare(i.delivery, 1) for i in dataset.items if i.kind != "poison"]
    size = servers.OURS.batch_size
    batches = [items[start : start + size] for start in range(0, len(items), size)]
    with stores.database("zi_bench_scaling") as database_url:
        pool = db.create_pool(
            servers.OURS.replace(database_url=database_url, db_pool_size=UPSERT_WRITERS),
            min_size=UPSERT_WRITERS,
        )
        try:
            before = _backends_cpu(database_url)
            started = time.monotonic()
            writers = [
                threading.Thread(target=_write_all, args=(pool, batches[n::UPSERT_WRITERS]))
                for n in range(UPSERT_WRITERS)
            ]
            for writer in writers:
                writer.start()
            for writer in writers:
                writer.join()
            seconds = time.monotonic() - started
            cpu = _backends_cpu(database_url) - before
        finally:
            pool.close()
    return len(items) / seconds, cpu / len(items) * 1e6


def _write_all(pool: object, batches: list[list[batch.Prepared]]) -> None:
    for items in batches:
        batch.write(pool, items)
