"""The exporter against real Redis and Postgres: what processes recorded, and the queue and dead
letters now, exposed with their types and exact values (parsed back from the text format)."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from dataclasses import replace

import prometheus_client
import psycopg
import pytest
import redis

from cli import metrics as metrics_command
from tests.fixtures import exposition, ports
from tests.fixtures.processes import CLI, wait_for
from tests.fixtures.services import settings_env
from worker.hosting import leases
from zenoti_ingest import metrics, stream
from zenoti_ingest.settings import Settings


def scrape(settings: Settings) -> exposition.Scrape:
    """One scrape through the registry `zenoti-ingest metrics` serves, parsed from its text."""
    registry, dead_letters = metrics_command.registry(settings)
    try:
        return exposition.parse(prometheus_client.generate_latest(registry).decode())
    finally:
        dead_letters.close()


def client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url)


def test_recorded_counts_from_two_processes_appear_exactly_with_their_types(settings):
    """Two recorders (two processes) add to the same totals; the scrape shows each counter,
    gauge and histogram with its declared type, the sums of both, and histogram buckets made
    cumulative from the stored per-bucket counts, _count equal to the +Inf bucket."""
    ingress_a = metrics.Recorder(client(settings), settings.redis_prefix)
    ingress_b = metrics.Recorder(client(settings), settings.redis_prefix)
    for recorder in (ingress_a, ingress_a, ingress_b):
        recorder.inc(metrics.REQUESTS, "", "accepted")
    ingress_b.inc(metrics.REQUESTS, "east", "unauthenticated", amount=2)
    for seconds in (0.0003, 0.003, 0.003, 0.2):
        ingress_a.observe(metrics.ENQUEUE_SECONDS, seconds)
    ingress_b.observe(metrics.ENQUEUE_SECONDS, 9.5)  # past every bucket: +Inf only
    ingress_b.set(metrics.LAST_RECEIVED, 1_700_000_000.25, "east")
    ingress_a.inc(metrics.SETTLED, "Appointment.Started", "processed", amount=7)
    ingress_a.inc(metrics.DEAD_LETTERS, "parse")
    ingress_a.observe(metrics.BATCH_SIZE, 7)
    ingress_a.flush()
    ingress_b.flush()

    result = scrape(settings)

    assert result.types["zenoti_ingest_requests_total"] == "counter"
    assert result.types["zenoti_ingest_deliveries_settled_total"] == "counter"
    assert result.types["zenoti_ingest_dead_letters_total"] == "counter"
    assert result.types["zenoti_ingest_drain_retries_total"] == "counter"
    assert result.types["zenoti_ingest_enqueue_seconds"] == "histogram"
    assert result.types["zenoti_ingest_batch_size"] == "histogram"
    assert result.types["zenoti_ingest_last_received_timestamp_seconds"] == "gauge"
    assert result.series("zenoti_ingest_requests_total") == {
        frozenset({"source": "", "outcome": "accepted"}.items()): 3.0,
        frozenset({"source": "east", "outcome": "unauthenticated"}.items()): 2.0,
    }
    assert (
        result.value(
            "zenoti_ingest_deliveries_settled_total",
            event_type="Appointment.Started",
            outcome="processed",
        )
        == 7.0
    )
    assert result.value("zenoti_ingest_dead_letters_total", failure_class="parse") == 1.0
    assert (
        result.value("zenoti_ingest_last_received_timestamp_seconds", source="east")
        == 1_700_000_000.25
    )
    enqueue = dict(result.buckets("zenoti_ingest_enqueue_seconds"))
    assert list(enqueue) == [*metrics.LATENCY_BUCKETS, float("inf")]
    assert (enqueue[0.0005], enqueue[0.0025], enqueue[0.005], enqueue[0.1]) == (1, 1, 3, 3)
    assert (enqueue[0.25], enqueue[2.5], enqueue[float("inf")]) == (4, 4, 5)
    assert result.value("zenoti_ingest_enqueue_seconds_count") == 5
    assert result.value("zenoti_ingest_enqueue_seconds_sum") == pytest.approx(9.7063)
    batch = result.buckets("zenoti_ingest_batch_size")
    assert [count for _, count in batch] == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert result.value("zenoti_ingest_batch_size_sum") == 7


def test_a_bucket_no_longer_declared_counts_under_the_next_bound(settings):
    """Per-bucket counts stored under a boundary since removed (an upgrade changed the
    buckets) are counted under the next declared one up: the buckets stay cumulative and
    _count still equals +Inf."""
    key = metrics.ENQUEUE_SECONDS.key(settings.redis_prefix)
    client(settings).hset(key, mapping={"bucket\t0.003": 2, "bucket\t0.001": 1, "sum": 0.007})
    result = scrape(settings)
    enqueue = dict(result.buckets("zenoti_ingest_enqueue_seconds"))
    assert (enqueue[0.001], enqueue[0.0025], enqueue[0.005], enqueue[float("inf")]) == (1, 1, 3, 3)
    assert result.value("zenoti_ingest_enqueue_seconds_count") == 3


def test_queue_state_matches_the_stream_and_the_drain_slots(settings):
    """A stream of 5 entries, the oldest 90 s old; one consumer holds 2, another read 1 and
    settled it (acknowledged and deleted, as the worker does); 3 drain slots leased: backlog 4,
    lag 2, pending by consumer 2 and 0, oldest about 90 s, workers alive 3."""
    redis_client = client(settings)
    keys = stream.Keys.of(settings)
    now_ms = int(time.time() * 1000)
    redis_client.xadd(keys.deliveries, {"n": 0}, id=f"{now_ms - 90_000}-0")
    for n in range(1, 5):
        redis_client.xadd(keys.deliveries, {"n": n}, id=f"{now_ms}-{n}")
    redis_client.xgroup_create(keys.deliveries, keys.group, id="0")
    redis_client.xreadgroup(keys.group, "node-a@host:0", {keys.deliveries: ">"}, count=2)
    [[_, [(settled_id, _)]]] = redis_client.xreadgroup(
        keys.group, "node-b@host:0", {keys.deliveries: ">"}, count=1
    )
    redis_client.xack(keys.deliveries, keys.group, settled_id)
    redis_client.xdel(keys.deliveries, settled_id)
    slots = leases.Leases(redis_client, settings.redis_prefix, ttl_seconds=60)
    for node, slot in (("node-a@host", 0), ("node-b@host", 0), ("node-b@host", 1)):
        assert slots.claim(node, slot)

    result = scrape(settings)

    assert result.value("zenoti_ingest_stream_backlog") == 4
    assert result.value("zenoti_ingest_stream_lag") == 2
    assert result.series("zenoti_ingest_pending") == {
        frozenset({"consumer": "node-a@host:0"}.items()): 2,
        frozenset({"consumer": "node-b@host:0"}.items()): 0,
    }
    assert 89 <= result.value("zenoti_ingest_oldest_waiting_seconds") <= 100
    assert result.value("zenoti_ingest_workers_alive") == 3
    assert result.types["zenoti_ingest_stream_backlog"] == "gauge"


def test_a_consumer_gone_quiet_with_nothing_pending_drops_out(settings):
    """Consumers past the claim timeout holding nothing (a worker long gone, under a node
    name never used again) leave the exposition, so the consumer label stays bounded; one
    still holding entries stays, however idle."""
    settings = replace(settings, claim_idle_seconds=0.2)
    redis_client = client(settings)
    keys = stream.Keys.of(settings)
    redis_client.xadd(keys.deliveries, {"n": 1})
    redis_client.xadd(keys.deliveries, {"n": 2})
    redis_client.xgroup_create(keys.deliveries, keys.group, id="0")
    redis_client.xreadgroup(keys.group, "holds@host:0", {keys.deliveries: ">"}, count=1)
    [[_, [(entry_id, _)]]] = redis_client.xreadgroup(
        keys.group, "gone@host:0", {keys.deliveries: ">"}, count=1
    )
    redis_client.xack(keys.deliveries, keys.group, entry_id)

    def consumers() -> set[str]:
        return {
            dict(labels)["consumer"] for labels in scrape(settings).series("zenoti_ingest_pending")
        }

    assert consumers() == {"holds@host:0", "gone@host:0"}
    wait_for(lambda: consumers() == {"holds@host:0"}, timeout=10, what="the idle consumer to go")


def insert_event(conn: psycopg.Connection, status: str, failure_class: str | None) -> None:
    conn.execute(
        "INSERT INTO webhook_events (ingest_id, received_at, delivery_id, status, failure_class,"
        " body) VALUES (%s, now(), %s, %s, %s, '{}')",
        (uuid.uuid4(), uuid.uuid4().hex, status, failure_class),
    )


def test_dead_letters_now_come_from_postgres_by_class(settings):
    """Rows dead now, per failure class: a discarded or processed row is not counted."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        for status, failure_class in [
            ("dead", "parse"),
            ("dead", "parse"),
            ("dead", "schema"),
            ("discarded", "schema"),
            ("processed", None),
        ]:
            insert_event(conn, status, failure_class)
    result = scrape(settings)
    assert result.series("zenoti_ingest_dead_letters") == {
        frozenset({"failure_class": "parse"}.items()): 2,
        frozenset({"failure_class": "schema"}.items()): 1,
    }
    assert result.types["zenoti_ingest_dead_letters"] == "gauge"
    assert result.value("zenoti_ingest_service_up", service="postgres") == 1


def test_postgres_down_leaves_the_rest_of_the_scrape(settings):
    """Postgres unreachable: the scrape still answers with everything Redis holds, and says
    service_up{postgres} 0 instead of the dead letters."""
    recorder = metrics.Recorder(client(settings), settings.redis_prefix)
    recorder.inc(metrics.REQUESTS, "", "accepted", amount=4)
    recorder.flush()
    down = replace(settings, database_url=f"postgresql://postgres@127.0.0.1:{ports.free_port()}/x")
    result = scrape(down)
    assert result.value("zenoti_ingest_requests_total", source="", outcome="accepted") == 4
    assert result.value("zenoti_ingest_service_up", service="postgres") == 0
    assert result.value("zenoti_ingest_service_up", service="redis") == 1
    assert result.series("zenoti_ingest_dead_letters") == {}


def test_redis_down_leaves_the_rest_of_the_scrape(settings):
    """Redis unreachable: the dead letters from Postgres are still there, service_up{redis}
    is 0, and nothing recorded is made up."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        insert_event(conn, "dead", "parse")
    down = replace(settings, redis_url=f"redis://127.0.0.1:{ports.free_port()}/0")
    result = scrape(down)
    assert result.value("zenoti_ingest_dead_letters", failure_class="parse") == 1
    assert result.value("zenoti_ingest_service_up", service="redis") == 0
    assert result.series("zenoti_ingest_requests_total") == {}
    assert "zenoti_ingest_stream_backlog" not in result.types


def test_a_taken_port_is_one_line_and_exit_2(settings):
    """Something already listens on ZENOTI_INGEST_METRICS_PORT: one line naming it, exit 2,
    no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**settings_env(settings), "ZENOTI_INGEST_METRICS_PORT": str(port)}
        result = subprocess.run(
            [*CLI, "metrics"], env=env, capture_output=True, text=True, timeout=60
        )
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert (result.returncode, len(lines)) == (2, 1), result.stderr
    assert f"ZENOTI_INGEST_METRICS_PORT {port}" in lines[0] and "Traceback" not in result.stderr
