"""`zenoti-ingest stats` against a known setup in real Redis and Postgres, at a fixed clock.

Minute buckets are written by the metrics Recorder itself (its clock fixed per minute), the
stream and its consumer group by Redis commands, dead letters by the worker's batch code.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from psycopg.conninfo import make_conninfo

from cli import exits
from cli import stats as stats_command
from tests.fixtures import samples
from tests.fixtures.database import delivery, write
from zenoti_ingest import metrics, stream

MINUTE = 28_400_000  # an epoch minute (2023-12-31)
NOW = MINUTE * 60 + 30.0  # half way through it: the minute before the oldest counts half
SECRET = "Jane Secretperson"  # in a dead letter's body: never shown by stats
WHEN = "2024-01-01T10:00:00Z"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def counted(client, prefix: str, minute: int, *counts) -> None:
    """Count (metric, labels..., amount) through a Recorder whose clock is in `minute`."""
    recorder = metrics.Recorder(client, prefix, clock=lambda: minute * 60 + 5.0)
    for metric, *labels, amount in counts:
        recorder.inc(metric, *labels, amount=amount)
    recorder.flush()


@pytest.fixture
def known(settings, pool, monkeypatch):
    """Requests and settled deliveries in minute buckets around NOW, last-received times, a
    stream of 3 entries of which a worker holds 1, a live drain slot, 3 dead letters (the
    newest last) and a processed delivery; stats reads at NOW."""
    client = redis.Redis.from_url(settings.redis_url)
    prefix, requests, settled = settings.redis_prefix, metrics.REQUESTS, metrics.SETTLED
    for back, amount in ((0, 6), (1, 4), (4, 10), (5, 20), (14, 30), (15, 60), (16, 1000)):
        counted(client, prefix, MINUTE - back, (requests, "", "accepted", amount))
    counted(
        client,
        prefix,
        MINUTE,
        (requests, "east", "accepted", 3),
        (requests, "east", "unauthenticated", 3),
        (settled, "Guest.Created", "processed", 10),
        (settled, "Appointment.Started", "processed", 2),
    )
    counted(client, prefix, MINUTE - 1, (settled, "other", "dead", 4))
    recorder = metrics.Recorder(client, prefix)
    recorder.set(metrics.LAST_RECEIVED, NOW - 90, "")
    recorder.set(metrics.LAST_RECEIVED, NOW - 4000, "east")
    recorder.set(metrics.LAST_RECEIVED, NOW - 7200, "west")
    recorder.flush()
    keys = stream.Keys.of(settings)
    for seconds_ago in (100, 50, 10):
        client.xadd(keys.deliveries, {"ingest_id": "x"}, id=f"{int((NOW - seconds_ago) * 1000)}-0")
    client.xgroup_create(keys.deliveries, keys.group, id="0")
    client.xreadgroup(keys.group, "celery@a:0", {keys.deliveries: ">"}, count=1)
    client.set(f"{prefix}:drain-slot:celery@a:0", "token", ex=60)
    dead = [
        delivery(b'{"name": "' + SECRET.encode() + b'"', "Guest.Created"),
        delivery(samples.envelope("Appointment.Started", {"appointments": "x"}, "z-1", WHEN)),
        delivery(samples.envelope("Appointment.Started", {"appointments": 1}, "z-2", WHEN)),
    ]
    for d in dead:  # one batch each: each its own failure time, in this order
        assert write(pool, d) == {d.ingest_id: "dead"}
    ok = delivery((EXAMPLES / "Guest.Created.json").read_bytes())
    assert write(pool, ok) == {ok.ingest_id: "processed"}
    monkeypatch.setattr(stats_command, "_now", lambda: NOW)
    yield [d.ingest_id for d in dead]
    client.close()


def test_json_numbers_against_a_known_setup(invoke, known):
    """--json: rates per source and per settled outcome over 1/5/15 minutes are the sliding
    window estimates of the buckets written (a bucket older than 15 minutes counts nowhere),
    last deliveries and their age, the stream's backlog, lag, pending and oldest age, the
    consumer holding an entry, live drain slots, dead letters by class and the newest
    failures newest first with class and reason, never a body."""
    out = invoke("stats", "--json").stdout
    document = json.loads(out)
    assert document["at"] == iso(NOW)
    default, east, west = document["sources"]
    # 1m: 6 + 4/2; 5m: (6+4+10 + 20/2)/5; 15m: (6+4+10+20+30 + 60/2)/15
    assert default == {
        "source": "",
        "last_received_at": iso(NOW - 90),
        "last_received_seconds_ago": 90.0,
        "requests_per_minute": {"1m": 8.0, "5m": 6.0, "15m": 6.67},
        "requests_per_minute_by_outcome": {"accepted": {"1m": 8.0, "5m": 6.0, "15m": 6.67}},
    }
    assert east["source"] == "east" and east["last_received_seconds_ago"] == 4000.0
    assert east["requests_per_minute"] == {"1m": 6.0, "5m": 1.2, "15m": 0.4}
    assert east["requests_per_minute_by_outcome"] == {
        "accepted": {"1m": 3.0, "5m": 0.6, "15m": 0.2},
        "unauthenticated": {"1m": 3.0, "5m": 0.6, "15m": 0.2},
    }
    assert west == {
        "source": "west",
        "last_received_at": iso(NOW - 7200),
        "last_received_seconds_ago": 7200.0,
        "requests_per_minute": {"1m": 0.0, "5m": 0.0, "15m": 0.0},
        "requests_per_minute_by_outcome": {},
    }
    assert document["queue"] == {
        "backlog": 3,
        "lag": 2,
        "pending": 1,
        "oldest_waiting_seconds": 100.0,
        "drain_slots_alive": 1,
    }
    [consumer] = document["consumers"]
    assert consumer["name"] == "celery@a:0" and consumer["pending"] == 1
    assert 0 <= consumer["idle_seconds"] < 60
    assert document["settled_per_minute"] == {
        "processed": {"1m": 12.0, "5m": 2.4, "15m": 0.8},
        "duplicate": {"1m": 0.0, "5m": 0.0, "15m": 0.0},
        "dead": {"1m": 2.0, "5m": 0.8, "15m": 0.27},  # 4 a minute ago: half in the last 60 s
    }
    assert document["dead_letters"] == {"parse": 1, "schema": 2}
    failures = document["newest_failures"]
    assert [f["ingest_id"] for f in failures] == known[::-1]
    assert [f["failure_class"] for f in failures] == ["schema", "schema", "parse"]
    assert (
        failures[2]["event_type"] == "Guest.Created" and "not valid JSON" in failures[2]["reason"]
    )
    assert set(failures[0]) == {
        "ingest_id", "failed_at", "source", "event_type", "failure_class", "reason"
    }  # fmt: skip
    assert document["unreachable"] == {}
    assert SECRET not in out


def test_table_shows_the_same_numbers(invoke, known):
    """The default table: sources with last delivery and rates, the stream line, the worker,
    settled rates, dead letters with a total, the newest failures; no body."""
    out = invoke("stats").stdout
    lines = [line.split() for line in out.splitlines()]
    assert ["(default)", "90", "s", "ago", "8.0", "6.0", "6.7", "accepted", "6.7"] in lines
    assert ["west", "2.0", "h", "ago", "0.0", "0.0", "0.0"] in lines
    assert "3 in the stream, 2 not yet handed to a worker, 1 handed out" in " ".join(out.split())
    assert "oldest waiting 100.0 s; 1 drain slot(s) alive" in " ".join(out.split())
    assert any(line[:2] == ["celery@a:0", "1"] for line in lines)
    assert ["processed", "12.0", "2.4", "0.8"] in lines and ["dead", "2.0", "0.8", "0.3"] in lines
    assert ["schema", "2"] in lines and ["total", "3"] in lines
    assert all(ingest_id in out for ingest_id in known)
    assert SECRET not in out


def test_watch_reads_again_at_each_refresh(invoke, known, settings, monkeypatch):
    """--watch --json prints one document per refresh, each read afresh (an entry added
    between two refreshes shows in the next); Ctrl-C ends it with exit 0. The table form ends
    showing the newest reading."""
    client = redis.Redis.from_url(settings.redis_url)
    refreshes = []

    def sleep(seconds: float) -> None:
        refreshes.append(seconds)
        if len(refreshes) == 3:
            raise KeyboardInterrupt
        client.xadd(stream.Keys.of(settings).deliveries, {"ingest_id": "y"})

    monkeypatch.setattr(stats_command, "_sleep", sleep)
    out = invoke("stats", "--json", "--watch", "2").stdout
    documents = [json.loads(line) for line in out.splitlines()]
    assert [d["queue"]["backlog"] for d in documents] == [3, 4, 5]
    assert refreshes == [2.0, 2.0, 2.0]
    refreshes.clear()
    out = invoke("stats", "--watch", "2").stdout
    assert "7 in the stream" in " ".join(out.split())


class TestPostgresDown:
    @pytest.fixture
    def settings(self, settings):
        return dataclasses.replace(settings, database_url="postgresql://postgres@127.0.0.1:1/x")

    def test_redis_part_still_shown_and_exit_3(self, invoke, settings):
        """Postgres unreachable: the Redis part is shown, the Postgres part says why, and the
        command exits 3 (UNAVAILABLE) after printing."""
        counted(
            redis.Redis.from_url(settings.redis_url),
            settings.redis_prefix,
            int(stats_command._now() // 60),
            (metrics.REQUESTS, "", "accepted", 60),
        )
        result = invoke("stats", "--json", code=exits.UNAVAILABLE)
        document = json.loads(result.stdout)
        assert document["sources"][0]["requests_per_minute"]["15m"] > 0
        assert document["queue"]["backlog"] == 0
        assert document["dead_letters"] is None and document["newest_failures"] is None
        assert "postgres unreachable" in document["unreachable"]["postgres"]
        result = invoke("stats", code=exits.UNAVAILABLE)
        assert "Postgres part not shown: postgres unreachable at" in " ".join(result.stdout.split())
        assert "Requests per minute" in result.stdout
        assert "postgres unreachable" in result.stderr


class TestRedisDown:
    @pytest.fixture
    def settings(self, settings):
        return dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0")

    def test_postgres_part_still_shown_and_exit_3(self, invoke, pool):
        """Redis unreachable: dead letters are shown, the Redis part says why, exit 3."""
        write(pool, delivery(b"{", "Guest.Created"))
        document = json.loads(invoke("stats", "--json", code=exits.UNAVAILABLE).stdout)
        assert document["dead_letters"] == {"parse": 1}
        assert document["sources"] is None and document["queue"] is None
        assert document["unreachable"]["redis"] == (
            "redis unreachable at redis://127.0.0.1:1/0 (ConnectionError)"
        )


def test_minute_hashes_expire_and_totals_stay(settings):
    """A flush adds windowed counts to the total and to the flush's minute hash, which
    expires after MINUTE_BUCKET_SECONDS; a counter that is not windowed has no minute hash."""
    client = redis.Redis.from_url(settings.redis_url)
    prefix = settings.redis_prefix
    counted(
        client,
        prefix,
        MINUTE,
        (metrics.REQUESTS, "", "accepted", 2),
        (metrics.DEAD_LETTERS, "parse", 1),
    )
    counted(client, prefix, MINUTE, (metrics.REQUESTS, "", "accepted", 3))
    assert metrics.counts(client, prefix, metrics.REQUESTS) == {("", "accepted"): 5.0}
    bucket = metrics.REQUESTS.minute_key(prefix, MINUTE)
    assert client.hgetall(bucket) == {b"\taccepted": b"5"}
    assert 0 < client.ttl(bucket) <= metrics.MINUTE_BUCKET_SECONDS
    assert client.keys(f"{metrics.DEAD_LETTERS.key(prefix)}:minute:*") == []


class TestNotMigrated:
    @pytest.fixture
    def settings(self, settings, postgres_service):
        admin = make_conninfo(postgres_service.url, dbname="postgres")
        return dataclasses.replace(settings, database_url=admin)

    def test_says_to_migrate(self, invoke):
        """A Postgres without our schema (its `postgres` database): the Postgres part says to
        run migrate; exit 3."""
        document = json.loads(invoke("stats", "--json", code=exits.UNAVAILABLE).stdout)
        assert document["unreachable"] == {"postgres": "no schema yet: run `zenoti-ingest migrate`"}
