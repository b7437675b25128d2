"""Every metric, declared once, and the recorder that keeps their counts in Redis.

Counts live in Redis hashes (one per metric, under the deployment's prefix), not in process
memory: every ingress and worker process on every host adds to the same totals, so one
`zenoti-ingest metrics` per deployment shows the whole system, and a process that restarts
takes nothing with it (a total never goes back, so `rate()` never sees a false reset).

A process records into a buffer (a dict update under a lock: the hot paths pay no round trip)
and the buffer is written with one pipeline of HINCRBY: by the worker after each batch, and
by a daemon thread every FLUSH_SECONDS in the ingress, and at exit. A flush that fails (Redis
down) puts the counts back, to go with the next one.

Windowed counters (requests, settled deliveries) also go, in the same pipeline, to a hash per
minute (`<key>:minute:<epoch minute>`, expiring after MINUTE_BUCKET_SECONDS), from which
`zenoti-ingest stats` computes rates over the last 1, 5 and 15 minutes without Prometheus. The
minute is the flush's (a second after the count at most, while Redis answers), so counting
costs the hot path nothing more.
"""

from __future__ import annotations

import atexit
import bisect
import contextlib
import functools
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from zenoti_ingest import redis_clients

COUNTER, HISTOGRAM, GAUGE = "counter", "histogram", "gauge"
FLUSH_SECONDS = 1.0
SEPARATOR = "\t"  # between label values in a hash field; no label value contains one
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
END_TO_END_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
WINDOWS_MINUTES = (1, 5, 15)  # the rates `stats` shows
MINUTE_BUCKET_SECONDS = 20 * 60  # a minute's counts outlive the longest window, then go


# eq=False: hashed by identity (each metric is declared once). A metric is half of the buffer's
# dict key on the hot path, and hashing its fields cost more than the rest of inc().
@dataclass(frozen=True, eq=False)
class Metric:
    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    windowed: bool = False  # a counter also counted per minute, for rates (per_minute)

    def key(self, prefix: str) -> str:
        """The Redis hash that holds this metric's counts."""
        return f"{prefix}:metrics:{self.name}"

    def minute_key(self, prefix: str, minute: int) -> str:
        """The Redis hash of a windowed counter's counts in one minute (epoch seconds // 60)."""
        return f"{self.key(prefix)}:minute:{minute}"


REQUESTS = Metric(
    "zenoti_ingest_requests_total",
    COUNTER,
    "Webhook requests by outcome (accepted, ping, unauthenticated, too_large, not_found, "
    "enqueue_failed, bad_request).",
    ("source", "outcome"),
    windowed=True,
)
ENQUEUE_SECONDS = Metric(
    "zenoti_ingest_enqueue_seconds",
    HISTOGRAM,
    "From the request read to Redis confirming the delivery.",
    buckets=LATENCY_BUCKETS,
)
LAST_RECEIVED = Metric(
    "zenoti_ingest_last_received_timestamp_seconds",
    GAUGE,
    "When the newest delivery of each source was accepted (Unix time).",
    ("source",),
)
SETTLED = Metric(
    "zenoti_ingest_deliveries_settled_total",
    COUNTER,
    "Deliveries settled by the workers, by event type and outcome (processed, duplicate, dead).",
    ("event_type", "outcome"),
    windowed=True,
)
DEAD_LETTERS = Metric(
    "zenoti_ingest_dead_letters_total",
    COUNTER,
    "Deliveries that became dead letters, by failure class.",
    ("failure_class",),
)
END_TO_END_SECONDS = Metric(
    "zenoti_ingest_end_to_end_seconds",
    HISTOGRAM,
    "From the ingress receiving a delivery to the commit of its rows.",
    buckets=END_TO_END_BUCKETS,
)
BATCH_SIZE = Metric(
    "zenoti_ingest_batch_size",
    HISTOGRAM,
    "Deliveries written per transaction.",
    buckets=BATCH_SIZE_BUCKETS,
)
BATCH_SECONDS = Metric(
    "zenoti_ingest_batch_seconds",
    HISTOGRAM,
    "Time to write one batch, from prepared deliveries to commit.",
    buckets=LATENCY_BUCKETS,
)
DRAIN_RETRIES = Metric(
    "zenoti_ingest_drain_retries_total",
    COUNTER,
    "Drain rounds that failed transiently and were retried, by kind of error.",
    ("error",),
)
RECORDED = (
    REQUESTS,
    ENQUEUE_SECONDS,
    LAST_RECEIVED,
    SETTLED,
    DEAD_LETTERS,
    END_TO_END_SECONDS,
    BATCH_SIZE,
    BATCH_SECONDS,
    DRAIN_RETRIES,
)


def field(labels: tuple[str, ...], *suffix: str) -> str:
    return SEPARATOR.join((*labels, *suffix))


class Recorder:
    """A process's buffer of metric changes, written to Redis by flush()."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis, self._prefix, self.enabled = client, prefix, enabled
        self._clock = clock  # the minute of windowed counts (tests fix it)
        self._lock = threading.Lock()
        self._counts: defaultdict[tuple[Metric, str], int] = defaultdict(int)  # HINCRBY
        self._sums: defaultdict[tuple[Metric, str], float] = defaultdict(float)  # HINCRBYFLOAT
        self._latest: dict[tuple[Metric, str], float] = {}
        # Hash field names by (metric, label values), built once: the hot path joins nothing.
        self._fields: dict[tuple[Metric, tuple[str, ...]], _Fields] = {}

    def inc(self, metric: Metric, *labels: str, amount: int = 1) -> None:
        if self.enabled:
            name = self._names(metric, labels).total
            with self._lock:
                self._counts[metric, name] += amount

    def observe(self, metric: Metric, value: float, *labels: str) -> None:
        """One observation of a histogram: its bucket, its sum, its count."""
        if not self.enabled:
            return
        names = self._names(metric, labels)
        bucket = names.buckets[bisect.bisect_left(metric.buckets, value)]
        with self._lock:
            self._counts[metric, bucket] += 1
            self._counts[metric, names.count] += 1
            self._sums[metric, names.sum] += value

    def set(self, metric: Metric, value: float, *labels: str) -> None:
        """A gauge's new value (the newest write wins across processes)."""
        if self.enabled:
            name = self._names(metric, labels).total
            with self._lock:
                self._latest[metric, name] = value

    def flush(self) -> None:
        """Write what was buffered in one pipeline of its own (see stage)."""
        pipe = self._redis.pipeline(transaction=False)
        settle = self.stage(pipe)
        if len(pipe):
            settle(redis_clients.execute_each(pipe))

    def stage(self, pipe: redis.client.Pipeline) -> Callable[[list[Any]], None]:
        """Move the buffer into `pipe` (a caller's pipeline: the worker's acknowledgement
        carries its batch's counts, no round trip of their own); call what this returns with
        the replies to those commands, in order. A command Redis refused goes back into the
        buffer, alone (the others were applied: a pipeline is no transaction); when Redis
        can't be reached everything goes back, for the next flush."""
        with self._lock:
            counts, sums, latest = self._counts, self._sums, self._latest
            self._counts, self._sums, self._latest = defaultdict(int), defaultdict(float), {}
        undo: list[Callable[[], None] | None] = []  # per command: how to put it back
        minute, minute_keys = int(self._clock() // 60), set()
        for (metric, name), amount in counts.items():
            pipe.hincrby(metric.key(self._prefix), name, amount)
            undo.append(functools.partial(self._put_back, self._counts, metric, name, amount))
            if metric.windowed:  # an approximation for `stats`: never put back
                minute_keys.add(metric.minute_key(self._prefix, minute))
                pipe.hincrby(metric.minute_key(self._prefix, minute), name, amount)
                undo.append(None)
        for (metric, name), amount in sums.items():
            pipe.hincrbyfloat(metric.key(self._prefix), name, amount)
            undo.append(functools.partial(self._put_back, self._sums, metric, name, amount))
        for key in minute_keys:
            pipe.expire(key, MINUTE_BUCKET_SECONDS)
            undo.append(None)
        for (metric, name), value in latest.items():
            pipe.hset(metric.key(self._prefix), name, value)
            undo.append(functools.partial(self._latest.setdefault, (metric, name), value))

        def settle(replies: list[Any]) -> None:
            with self._lock:
                for reply, put_back in zip(replies, undo, strict=True):
                    if put_back is not None and isinstance(reply, Exception):
                        put_back()

        return settle

    @staticmethod
    def _put_back(store: defaultdict, metric: Metric, name: str, amount: float) -> None:
        store[metric, name] += amount

    def _names(self, metric: Metric, labels: tuple[str, ...]) -> _Fields:
        names = self._fields.get((metric, labels))
        if names is None:
            names = self._fields[metric, labels] = _Fields.of(metric, labels)
        return names

    def flush_in_background(self) -> None:
        """Flush every FLUSH_SECONDS from a daemon thread, and once more at exit (ingress)."""

        def loop() -> None:
            while True:
                time.sleep(FLUSH_SECONDS)
                with contextlib.suppress(Exception):  # never let the thread die
                    self.flush()

        threading.Thread(target=loop, name="metrics-flush", daemon=True).start()
        atexit.register(self.flush)


@dataclass(frozen=True, slots=True)
class _Fields:
    """The hash fields of one metric's series (one set of label values)."""

    total: str  # a counter's or gauge's value
    buckets: tuple[str, ...]  # a histogram's, one per bucket and +Inf last
    sum: str
    count: str

    @classmethod
    def of(cls, metric: Metric, labels: tuple[str, ...]) -> _Fields:
        bounds = [repr(float(b)) for b in metric.buckets] + ["+Inf"]
        return cls(
            total=field(labels),
            buckets=tuple(field(labels, "bucket", le) for le in bounds),
            sum=field(labels, "sum"),
            count=field(labels, "count"),
        )


def per_minute(
    client: redis.Redis,
    prefix: str,
    metric: Metric,
    now: float | None = None,
    windows: tuple[int, ...] = WINDOWS_MINUTES,
) -> dict[tuple[str, ...], dict[int, float]]:
    """A windowed counter's mean rate per minute over each of the last `windows` minutes, by
    label values: {labels: {minutes: rate}}, read from its minute hashes in one pipeline.

    The current minute is partial, so a window of N minutes counts it, the N-1 before it, and
    the share of the minute before those that still lies within the last N*60 seconds (a
    sliding-window estimate: rates move smoothly instead of dropping as each minute starts).
    """
    now = time.time() if now is None else now
    minute, seconds = divmod(now, 60)
    pipe = client.pipeline(transaction=False)
    for back in range(max(windows) + 1):
        pipe.hgetall(metric.minute_key(prefix, int(minute) - back))
    buckets = pipe.execute()  # buckets[k]: the minute k minutes before the current one
    result = {}
    for name in {name for bucket in buckets for name in bucket}:
        counts = [float(bucket.get(name, 0)) for bucket in buckets]
        labels = tuple(name.decode().split(SEPARATOR)) if metric.labels else ()
        result[labels] = {
            n: (sum(counts[:n]) + counts[n] * (1 - seconds / 60)) / n for n in windows
        }
    return result


def counts(client: redis.Redis, prefix: str, metric: Metric) -> dict[tuple[str, ...], float]:
    """A counter's or gauge's totals as Redis holds them, by label values."""
    return {
        tuple(name.decode().split(SEPARATOR)) if metric.labels else (): float(value)
        for name, value in client.hgetall(metric.key(prefix)).items()
    }
