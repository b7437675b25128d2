"""Phase 3: receipt → committed latency through our ingress and worker at a steady rate.

Two measures. From the database, processed_at - received_at for every delivery: processed_at
is now() in the worker's transaction, i.e. when the batch's transaction began, so it leaves out
the batch's own write and commit. From outside, for a sample of deliveries: the first moment a
poll (every OBSERVE_SECONDS) sees the committed row, minus received_at: the real commit time,
late by at most one poll.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass, field

import http_load
import payloads
import phase_sustained
import procs
import psycopg
import redis
import resources
import servers
import stats
import stores
from plan import Plan

from zenoti_ingest import stream

REDIS_DB = 13
SAMPLES_PER_SECOND = 200  # deliveries whose commit is watched from outside
OBSERVE_SECONDS = 0.01
START_DELAY_SECONDS = 1.0  # between starting the load generator and its first request
SETTLE_TIMEOUT_SECONDS = 120.0
WARMUP_DELIVERIES = 20
_NUMBERED = payloads.STEADY.patterns()
_SETTLED = "SELECT count(*) FROM webhook_events WHERE delivery_id LIKE %(deliveries)s"
_LATENCY = """
SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY ms), max(ms)
FROM (SELECT extract(epoch FROM processed_at - received_at) * 1000 AS ms
      FROM webhook_events WHERE delivery_id LIKE %(deliveries)s) AS latencies
"""
_SEEN = """
SELECT delivery_id, received_at FROM webhook_events
WHERE status = 'processed' AND delivery_id = ANY(%(ids)s)
"""
_OUTCOMES = """
SELECT
  (SELECT count(*) FROM webhook_events WHERE delivery_id LIKE %(deliveries)s
                                         AND status = 'processed'),
  (SELECT count(*) FROM webhook_events WHERE delivery_id LIKE %(deliveries)s
                                         AND status <> 'processed'),
  (SELECT count(*) FROM appointments WHERE appointment_id::text LIKE %(appointments)s)
"""


@dataclass(frozen=True)
class E2EResult:
    target_rate: float
    load: http_load.LoadResult
    processed: int  # numbered deliveries written once, as processed
    not_processed: int  # numbered deliveries written as duplicate or dead: should be none
    appointments: int  # rows for numbered appointments: one per processed delivery
    database_ms: tuple[float, float, float]  # p50, p99, max of processed_at - received_at
    observed_ms: dict[str, float]  # p50_ms, p99_ms, max_ms of the sample seen from outside
    samples: int
    unseen: int  # sampled deliveries never seen committed
    max_backlog: int  # most stream entries waiting at once: the worker fell behind if large
    usage: list[resources.Usage]  # ingress, worker: from the load's start to all written
    sustained: phase_sustained.Sustained | None  # what the rate was derived from, if it was

    @property
    def lost(self) -> int:
        return max(0, self.load.accepted - self.processed - self.not_processed)


def run(group: procs.Group, plan: Plan, rate: float | None) -> E2EResult:
    """At `rate`, or (None) at half the sustained maximum measured first."""
    redis_url = stores.redis_url(REDIS_DB)
    with (
        stores.redis_database(REDIS_DB) as client,
        stores.database("zi_bench_e2e") as database_url,
        psycopg.connect(database_url, autocommit=True) as conn,
        group.scope(),
    ):
        server = servers.start_ours(group, redis_url, database_url)
        worker = servers.start_worker(group, "ours-worker-e2e", redis_url, database_url)
        pipeline = Pipeline(group, server, worker, conn, client)
        warm_up(pipeline)
        sustained = None if rate else phase_sustained.measure(pipeline, plan)
        rate = rate or sustained.commit_rate / 2
        procs.say(f"end to end: ours, {rate:,.0f} deliveries/s for {plan.e2e_seconds:.0f} s")
        with resources.UsageWatch([server.proc, worker]) as watch:
            load, observation = send_and_observe(pipeline, plan, rate)
            wait_settled(pipeline, load.accepted)
        processed, not_processed, appointments = conn.execute(_OUTCOMES, _NUMBERED).fetchone()
        result = E2EResult(
            rate,
            load,
            processed,
            not_processed,
            appointments,
            database_ms=_database_latency(conn),
            observed_ms=stats.summary_ms(observation.latencies),
            samples=len(observation.schedule),
            unseen=observation.unseen,
            max_backlog=observation.max_backlog,
            usage=watch.usage(),
            sustained=sustained,
        )
    procs.say(
        f"  sent {load.rps:,.0f}/s; database p99 {result.database_ms[1]:.0f} ms, "
        f"observed p99 {result.observed_ms['p99_ms']:.0f} ms; lost {result.lost}"
    )
    return result


@dataclass(frozen=True)
class Pipeline:
    """Our ingress and worker, running, and connections to watch what they write."""

    group: procs.Group
    server: servers.Server
    worker: procs.Proc
    conn: psycopg.Connection
    client: redis.Redis

    @property
    def processes(self) -> list[procs.Proc]:
        return [self.server.proc, self.worker]

    def backlog(self) -> int:
        """Stream entries not yet written (entries are deleted once committed)."""
        return self.client.xlen(stream.Keys.of(servers.OURS).deliveries)


@dataclass
class Observation:
    """What polling saw of the sampled deliveries while the load ran."""

    schedule: list[tuple[float, str]]  # (when sent, delivery id), in sending order
    latencies: list[float] = field(default_factory=list)  # seconds, receipt → seen committed
    unseen: int = 0
    max_backlog: int = 0


def send_and_observe(
    pipeline: Pipeline, plan: Plan, rate: float
) -> tuple[http_load.LoadResult, Observation]:
    """Run the load generator at `rate` while watching the sample's commits."""
    start_at = time.time() + START_DELAY_SECONDS
    loadgen = http_load.start_steady_rate(
        pipeline.group,
        "load-e2e",
        pipeline.server.webhook_url,
        rate,
        plan.e2e_seconds,
        start_at,
        plan.connections,
    )
    observation = Observation(sample_schedule(rate, plan.e2e_seconds, start_at))
    observe(pipeline, observation, loadgen)
    output = pipeline.group.finish(loadgen, timeout=plan.e2e_seconds + SETTLE_TIMEOUT_SECONDS)
    return http_load.LoadResult.from_output(output), observation


def warm_up(pipeline: Pipeline) -> None:
    """Post a few deliveries (one, then redeliveries of it) and wait until all are written:
    the whole pipeline is up."""
    body = payloads.started_body()
    connection = http.client.HTTPConnection(servers.HOST, pipeline.server.port, timeout=10)
    try:
        for _ in range(WARMUP_DELIVERIES):
            connection.request(
                "POST", servers.WEBHOOK_PATH, body, {"Content-Type": "application/json"}
            )
            connection.getresponse().read()
    finally:
        connection.close()
    procs.wait_until(
        lambda: (
            pipeline.conn.execute("SELECT count(*) FROM webhook_events").fetchone()[0]
            >= WARMUP_DELIVERIES
        ),
        timeout=60,
        what="the warm-up deliveries to be written",
        watch=pipeline.processes,
    )


def sample_schedule(rate: float, seconds: float, start_at: float) -> list[tuple[float, str]]:
    """(when it is sent, delivery id) of every sampled numbered delivery, in sending order."""
    step = max(1, round(rate / SAMPLES_PER_SECOND))
    return [
        (start_at + n / rate, payloads.STEADY.delivery_id(n))
        for n in range(0, int(rate * seconds), step)
    ]


def observe(pipeline: Pipeline, observation: Observation, loadgen: procs.Proc) -> None:
    """Poll for the sampled deliveries' committed rows, and the backlog. Stops when every
    sample is seen, or the load is over and the stream is empty."""
    schedule, outstanding, due = observation.schedule, set(), 0
    while due < len(schedule) or outstanding:
        backlog = pipeline.backlog()
        observation.max_backlog = max(observation.max_backlog, backlog)
        finished = not loadgen.running() and backlog == 0  # checked before the last poll
        polled_at = time.time()
        while due < len(schedule) and schedule[due][0] <= polled_at:
            outstanding.add(schedule[due][1])
            due += 1
        for delivery_id, received_at in pipeline.conn.execute(_SEEN, {"ids": list(outstanding)}):
            observation.latencies.append(polled_at - received_at.timestamp())
            outstanding.discard(delivery_id)
        if finished:
            break
        for proc in pipeline.processes:
            proc.check()
        time.sleep(OBSERVE_SECONDS)
    observation.unseen = len(outstanding) + len(schedule) - due


def wait_settled(pipeline: Pipeline, accepted: int) -> None:
    def settled() -> bool:
        written = pipeline.conn.execute(_SETTLED, _NUMBERED).fetchone()[0]
        return written >= accepted and pipeline.backlog() == 0

    procs.wait_until(
        settled,
        timeout=SETTLE_TIMEOUT_SECONDS,
        watch=pipeline.processes,
        what=f"{accepted:,} accepted deliveries to be written",
    )


def _database_latency(conn: psycopg.Connection) -> tuple[float, float, float]:
    (p50, p99), worst = conn.execute(_LATENCY, _NUMBERED).fetchone()
    return float(p50), float(p99), float(worst)
