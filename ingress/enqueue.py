"""Publish a Delivery to the Redis stream; EnqueueFailed when Redis does not take it."""

from __future__ import annotations

import contextlib

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from zenoti_ingest import contract, errors
from zenoti_ingest.settings import Settings


class Enqueuer:
    """Appends deliveries to the stream with one XADD each; one per ingress process."""

    def __init__(self, settings: Settings) -> None:
        self._stream = settings.stream_key
        self._counters = settings.counters_key
        self._wait_replicas = settings.wait_replicas
        self._wait_timeout_ms = settings.wait_timeout_ms
        self._redis = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.enqueue_timeout_seconds,
            socket_connect_timeout=settings.enqueue_timeout_seconds,
            # One immediate retry: enough for a pooled connection that died with a Redis
            # restart, short enough to answer 503 well inside Zenoti's 10 s.
            # Only on a connection error: an XADD that timed out may have been written, and
            # sending it again would answer late and store the delivery twice.
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            retry_on_timeout=False,
        )

    def publish(self, delivery: contract.Delivery) -> None:
        """Append the delivery; return only once Redis has it (then the caller may answer 202).

        With ZENOTI_INGEST_WAIT_REPLICAS set, also wait (one round trip, pipelined) until that
        many replicas have it; fewer in time → EnqueueFailed, and Zenoti retries (the copy
        already written is then a duplicate, which the worker recognizes).
        """
        try:
            if not self._wait_replicas:
                self._redis.xadd(self._stream, delivery.to_fields())
                return
            pipe = self._redis.pipeline(transaction=False)
            pipe.xadd(self._stream, delivery.to_fields())
            pipe.wait(self._wait_replicas, self._wait_timeout_ms)
            _, replicas = pipe.execute()
        except redis.RedisError as exc:  # down, timed out, OOM under noeviction, read-only
            raise errors.EnqueueFailed(f"redis: {type(exc).__name__}") from exc
        if replicas < self._wait_replicas:
            raise errors.EnqueueFailed(
                f"redis: {replicas} of {self._wait_replicas} replicas acknowledged in time"
            )

    def count(self, counter: str) -> None:
        """Add one to a shared counter (pings, unauthenticated); best effort, never raises."""
        with contextlib.suppress(redis.RedisError):
            self._redis.hincrby(self._counters, counter, 1)

    def ready(self) -> bool:
        """Does the broker answer right now?"""
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False
