"""What `zenoti-ingest metrics` serves: the recorded totals, and the queue and dead letters now.

Nothing is counted in the exporter: at each scrape the Collector reads every recorded metric's
Redis hash (one pipeline of HGETALL), the stream's state (queue_state.read), the live drain
slots and the dead letters per class (one grouped query), and hands them to prometheus_client
as families of the declared types. So one exporter shows what every ingress and worker process
on every host recorded, and a scrape costs the same however many processes there were.

A service that does not answer leaves its own metrics out of that scrape, never the whole
scrape: zenoti_ingest_service_up{service} says which one answered.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

import prometheus_client
import psycopg
import redis
from prometheus_client import core, registry, utils
from prometheus_client import exposition as client_exposition

from zenoti_ingest import logs, metrics, queue_state, sql, stream
from zenoti_ingest.settings import Settings

POSTGRES_TIMEOUT_SECONDS = 2  # connect, and each statement: well inside a 10 s scrape timeout
REDIS, POSTGRES = "redis", "postgres"
INF = float("inf")

log = logs.get_logger(__name__)

Hashes = dict[metrics.Metric, dict[bytes, bytes]]


def read_recorded(client: redis.Redis, prefix: str) -> Hashes:
    """Every recorded metric's hash, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for metric in metrics.RECORDED:
        pipe.hgetall(metric.key(prefix))
    return dict(zip(metrics.RECORDED, pipe.execute(), strict=True))


def recorded_families(hashes: Hashes) -> Iterator[core.Metric]:
    for metric, fields in hashes.items():
        if metric.kind == metrics.HISTOGRAM:
            yield _histogram(metric, fields)
        else:
            yield _scalar(metric, fields)


def _split(metric: metrics.Metric, name: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A hash field: (label values, what follows them: () or ("bucket", le) or ("sum",)...)."""
    parts = tuple(name.decode().split(metrics.SEPARATOR))
    return parts[: len(metric.labels)], parts[len(metric.labels) :]


def _scalar(metric: metrics.Metric, fields: dict[bytes, bytes]) -> core.Metric:
    kind = core.CounterMetricFamily if metric.kind == metrics.COUNTER else core.GaugeMetricFamily
    family = kind(metric.name, metric.help, labels=metric.labels)
    for name, value in sorted(fields.items()):
        labels, rest = _split(metric, name)
        if len(labels) == len(metric.labels) and not rest:
            family.add_metric(labels, float(value))
    return family


def _histogram(metric: metrics.Metric, fields: dict[bytes, bytes]) -> core.Metric:
    """Cumulative buckets from the stored per-bucket counts; _count is the +Inf bucket, so it
    always agrees with the buckets (a flush may be half-applied when we read)."""
    counts: defaultdict[tuple[str, ...], list[tuple[float, float]]] = defaultdict(list)
    sums: defaultdict[tuple[str, ...], float] = defaultdict(float)
    for name, value in fields.items():
        labels, rest = _split(metric, name)
        if len(labels) != len(metric.labels):
            continue
        if len(rest) == 2 and rest[0] == "bucket":
            counts[labels].append((float(rest[1]), float(value)))  # float("+Inf") is inf
        elif rest == ("sum",):
            sums[labels] = float(value)
    family = core.HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
    for labels in sorted(counts.keys() | sums.keys()):
        # A bucket no longer declared (its boundaries changed) is counted under the next one up.
        buckets = [
            (utils.floatToGoString(bound), sum(n for le, n in counts[labels] if le <= bound))
            for bound in (*metric.buckets, INF)
        ]
        family.add_metric(labels, buckets, sums[labels])
    return family


def queue_families(state: queue_state.QueueState, stale_after_seconds: float) -> list[core.Metric]:
    """The stream now. A consumer is shown while it holds entries or has read within
    `stale_after_seconds` (the claim timeout): consumers of workers long gone (each node name
    leaves one behind) drop out, so the label stays bounded by the live workers."""
    pending = core.GaugeMetricFamily(
        "zenoti_ingest_pending",
        "Stream entries handed to each consumer (<worker node>:<slot>) and not acknowledged.",
        labels=("consumer",),
    )
    idle = core.GaugeMetricFamily(
        "zenoti_ingest_consumer_idle_seconds",
        "Seconds since each consumer last read or claimed from the stream.",
        labels=("consumer",),
    )
    for consumer in state.consumers:
        if consumer.pending or consumer.idle_seconds < stale_after_seconds:
            pending.add_metric((consumer.name,), consumer.pending)
            idle.add_metric((consumer.name,), consumer.idle_seconds)
    return [
        _gauge(
            "zenoti_ingest_stream_backlog",
            "Deliveries in the stream: waiting, or handed to a worker and not yet settled.",
            state.backlog,
        ),
        _gauge(
            "zenoti_ingest_stream_lag",
            "Deliveries in the stream no worker has been handed yet.",
            state.lag,
        ),
        _gauge(
            "zenoti_ingest_oldest_waiting_seconds",
            "Age of the oldest delivery in the stream (0 when it is empty).",
            state.oldest_waiting_seconds,
        ),
        pending,
        idle,
    ]


def dead_letter_family(by_class: dict[str, int]) -> core.Metric:
    family = core.GaugeMetricFamily(
        "zenoti_ingest_dead_letters",
        "Dead letters now (archived, not replayed or discarded), by failure class.",
        labels=("failure_class",),
    )
    for failure_class, count in sorted(by_class.items()):
        family.add_metric((failure_class,), count)
    return family


def _gauge(name: str, help: str, value: float) -> core.Metric:
    return core.GaugeMetricFamily(name, help, value=value)


def wsgi_app(found: registry.Collector) -> Callable:
    """/metrics in Prometheus's classic text format, whatever the scraper asks for. In
    OpenMetrics a counter's family drops `_total`, so our counter zenoti_ingest_dead_letters_total
    and gauge zenoti_ingest_dead_letters (both names fixed by issue 12) would be one family
    declared twice, which an OpenMetrics parser refuses."""
    served = prometheus_client.make_wsgi_app(found)

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        environ["HTTP_ACCEPT"] = client_exposition.CONTENT_TYPE_PLAIN_0_0_4
        return served(environ, start_response)

    return app


class DeadLetters:
    """Dead letters per failure class, on one connection kept between scrapes (and opened again
    after a failure)."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._lock = threading.Lock()  # concurrent scrapes share the connection
        self._conn: psycopg.Connection | None = None

    def by_class(self) -> dict[str, int]:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(
                        self._url,
                        autocommit=True,
                        connect_timeout=POSTGRES_TIMEOUT_SECONDS,
                        options=f"-c statement_timeout={POSTGRES_TIMEOUT_SECONDS * 1000}",
                        application_name="zenoti-ingest metrics",
                    )
                return dict(self._conn.execute(sql.queries["count_dead_by_class"]).fetchall())
            except psycopg.Error:
                self._close()
                raise

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Collector(registry.Collector):
    """Everything /metrics shows, read afresh at each scrape."""

    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        workers_alive: Callable[[], int],
        dead_letters: DeadLetters,
    ) -> None:
        self._settings, self._redis = settings, client
        self._keys = stream.Keys.of(settings)
        self._workers_alive = workers_alive
        self._dead_letters = dead_letters
        self._answered = {REDIS: True, POSTGRES: True}  # logged when it changes, not per scrape

    def collect(self) -> Iterable[core.Metric]:
        started = time.perf_counter()
        families: list[core.Metric] = []
        up = {REDIS: self._read(REDIS, self._from_redis, families)}
        up[POSTGRES] = self._read(POSTGRES, self._from_postgres, families)
        service_up = core.GaugeMetricFamily(
            "zenoti_ingest_service_up",
            "1 if this scrape could read the service (redis: every metric recorded and the "
            "stream; postgres: the dead letters now), else 0 and its metrics are left out.",
            labels=("service",),
        )
        for service, answered in up.items():
            service_up.add_metric((service,), 1 if answered else 0)
        families.append(service_up)
        families.append(
            _gauge(
                "zenoti_ingest_scrape_duration_seconds",
                "How long this scrape took to read Redis and Postgres.",
                time.perf_counter() - started,
            )
        )
        return families

    def _read(
        self, service: str, read: Callable[[], list[core.Metric]], into: list[core.Metric]
    ) -> bool:
        try:
            into.extend(read())
        except (redis.RedisError, psycopg.Error) as exc:
            if self._answered[service]:
                log.warning("metrics_read_failed", service=service, error=type(exc).__name__)
            self._answered[service] = False
            return False
        if not self._answered[service]:
            log.info("metrics_read_again", service=service)
        self._answered[service] = True
        return True

    def _from_redis(self) -> list[core.Metric]:
        hashes = read_recorded(self._redis, self._settings.redis_prefix)
        state = queue_state.read(self._redis, self._keys)
        alive = _gauge(
            "zenoti_ingest_workers_alive",
            "Drain slots held by a live worker: one per worker pool process, on every host.",
            self._workers_alive(),
        )
        stale_after = self._settings.claim_idle_seconds
        return [*recorded_families(hashes), *queue_families(state, stale_after), alive]

    def _from_postgres(self) -> list[core.Metric]:
        return [dead_letter_family(self._dead_letters.by_class())]
