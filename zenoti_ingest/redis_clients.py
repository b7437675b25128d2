"""The one place that builds Redis clients: each kind of user gets the timeouts it needs.

Every process that talks to Redis (the ingress, the drain loop and its leases, the worker's
supervisor, the CLI, the service probe) asks here, so that a new form of `REDIS_URL` (Sentinel)
changes this module alone.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from zenoti_ingest.settings import Settings

WORKER_TIMEOUT_SECONDS = 10.0  # a drain round's commands; XREADGROUP blocks far less
CONNECT_TIMEOUT_SECONDS = 5.0


def for_enqueue(settings: Settings) -> redis.Redis:
    """A client that answers within the ingress's deadline (Zenoti waits 10 s in all).

    One immediate retry, only on a connection error: enough for a pooled connection that died
    with a Redis restart, short enough to answer 503 in time. Never on a timeout: an XADD that
    timed out may have been written, and sending it again would store the delivery twice.
    """
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.enqueue_timeout_seconds,
        socket_connect_timeout=settings.enqueue_timeout_seconds,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        retry_on_timeout=False,
    )


def for_worker(settings: Settings, timeout_seconds: float = WORKER_TIMEOUT_SECONDS) -> redis.Redis:
    """A client for the worker's stream reads, acknowledgements and slot leases (the
    supervisor, on the consumer's timer, asks for a shorter timeout)."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
    )


def for_probe(url: str, timeout_seconds: float) -> redis.Redis:
    """A client that says quickly whether a Redis answers at url (services, readiness)."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
    )


def execute_each(pipe: redis.client.Pipeline) -> list[Any]:
    """Run a pipeline and return one reply per command: its result, or the error Redis gave
    it, or for every command the error that stopped the round trip (Redis unreachable)."""
    try:
        return pipe.execute(raise_on_error=False)
    except redis.RedisError as exc:
        return [exc] * len(pipe)
