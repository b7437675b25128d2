"""Publish a Delivery to the Redis stream; EnqueueFailed when Redis does not take it."""

from __future__ import annotations

import contextlib

import redis

from zenoti_ingest import contract, errors
from zenoti_ingest.settings import Settings


class Enqueuer:
    """Appends deliveries to the stream with one XADD each; one per ingress process."""

    def __init__(self, settings: Settings) -> None:
        self._stream = settings.stream_key
        self._counters = settings.counters_key
        self._redis = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.enqueue_timeout_seconds,
            socket_connect_timeout=settings.enqueue_timeout_seconds,
            retry_on_timeout=False,
        )

    def publish(self, delivery: contract.Delivery) -> None:
        """Append the delivery; return only once Redis has it (then the caller may answer 202)."""
        try:
            self._redis.xadd(self._stream, delivery.to_fields())
        except redis.RedisError as exc:  # down, timed out, OOM under noeviction, read-only
            raise errors.EnqueueFailed(f"redis: {type(exc).__name__}") from exc

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
