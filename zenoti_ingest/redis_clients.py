"""The one place that builds Redis clients: each kind of user gets the timeouts it needs.

Every process that talks to Redis (the ingress, the drain loop and its leases, the worker's
supervisor, the CLI, the service probe) asks here, so that a new form of `REDIS_URL` (Sentinel)
changes this module alone.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote

import redis
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from zenoti_ingest import sentinel_url
from zenoti_ingest.settings import Settings

WORKER_TIMEOUT_SECONDS = 10.0  # a drain round's commands; XREADGROUP blocks far less
CONNECT_TIMEOUT_SECONDS = 5.0


def for_enqueue(settings: Settings) -> redis.Redis:
    """A client that answers within the ingress's deadline (Zenoti waits 10 s in all).

    One immediate retry, only on a connection error: enough for a pooled connection that died
    with a Redis restart, short enough to answer 503 in time. Never on a timeout: an XADD that
    timed out may have been written, and sending it again would store the delivery twice.
    """
    return _client(
        settings.redis_url,
        socket_timeout=settings.enqueue_timeout_seconds,
        socket_connect_timeout=settings.enqueue_timeout_seconds,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        retry_on_timeout=False,
    )


def for_worker(settings: Settings, timeout_seconds: float = WORKER_TIMEOUT_SECONDS) -> redis.Redis:
    """A client for the worker's stream reads, acknowledgements and slot leases (the
    supervisor, on the consumer's timer, asks for a shorter timeout)."""
    return _client(
        settings.redis_url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
    )


def for_probe(url: str, timeout_seconds: float) -> redis.Redis:
    """A client that says quickly whether a Redis answers at url (services, readiness)."""
    return _client(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)


def _client(url: str, **options: Any) -> redis.Redis:
    """A client for url: a plain one, or for the Sentinel form a client of the current primary.

    The Sentinel client's pool asks the sentinels for the primary at each new connection; a
    connection error, or a READONLY reply from a demoted primary, closes the connection (redis-py
    turns READONLY into a ConnectionError), so the next command, or for_enqueue's one retry,
    connects to the primary the sentinels name then. While they elect, there is none
    (MasterNotFoundError, a ConnectionError): the ingress answers 503, the worker backs off.
    """
    if not sentinel_url.is_sentinel(url):
        client = redis.Redis.from_url(url, **options)
        pool = client.connection_pool
        pool.connection_class = _reconnecting_on_readonly(pool.connection_class)
        return client
    target = sentinel_url.parse(url)
    return _sentinels(target, options).master_for(
        target.master_name,
        db=target.db,
        username=target.username,
        password=target.password,
        **options,
    )


@functools.cache
def _reconnecting_on_readonly(connection_class: type) -> type:
    """connection_class, closing its connection on a READONLY reply, as redis-py's Sentinel
    connections do: behind one endpoint that follows the primary (a managed Redis's, a proxy's),
    a pooled connection to a demoted primary would otherwise get READONLY for as long as it
    lives, a 503 loop. As a ConnectionError, for_enqueue's one retry and the worker's next
    round connect again, to wherever the endpoint points then."""

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return connection_class.read_response(self, *args, **kwargs)
        except redis.ReadOnlyError:
            self.disconnect()
            raise redis.ConnectionError("READONLY: the primary was demoted; reconnecting") from None

    name = f"ReconnectingOnReadOnly{connection_class.__name__}"
    return type(name, (connection_class,), {"read_response": read_response})


def _sentinels(
    target: sentinel_url.SentinelUrl, options: dict[str, Any]
) -> redis.sentinel.Sentinel:
    """The sentinels of target, asked within the client's own time limits."""
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    return redis.sentinel.Sentinel(
        list(target.sentinels),
        sentinel_kwargs={**timeouts, "password": target.sentinel_password},
    )


def primary_url(url: str, timeout_seconds: float = CONNECT_TIMEOUT_SECONDS) -> str:
    """A plain redis:// URL of the Redis that url means now: url itself, or for the Sentinel
    form the current primary (for tools that speak only plain URLs: redis-cli)."""
    if not sentinel_url.is_sentinel(url):
        return url
    target = sentinel_url.parse(url)
    options = {"socket_timeout": timeout_seconds, "socket_connect_timeout": timeout_seconds}
    address = _sentinels(target, options).discover_master(target.master_name)
    return f"redis://{_netloc(target, address)}/{target.db}"


def _netloc(target: sentinel_url.SentinelUrl, address: tuple[str, int]) -> str:
    """[user:password@]host:port for a URL, with the password of target."""
    host, port = address
    host = f"[{host}]" if ":" in host else host
    if target.password is None:
        return f"{host}:{port}"
    return f"{quote(target.username or '')}:{quote(target.password, safe='')}@{host}:{port}"


def celery_broker(settings: Settings) -> tuple[str, dict[str, Any]]:
    """Celery's broker URL and the transport options it needs besides ours.

    The Sentinel form becomes kombu's: one `sentinel://` URL per sentinel joined by `;` (kombu
    tries them in turn), the primary's name and the sentinels' password as transport options.
    kombu's Sentinel channel builds its pool with redis-py's `master_for`, so it reconnects to
    a new primary the same way our own clients do (tests/e2e/test_sentinel_failover.py).
    """
    if not sentinel_url.is_sentinel(settings.redis_url):
        return settings.redis_url, {}
    target = sentinel_url.parse(settings.redis_url)
    urls = [f"sentinel://{_netloc(target, address)}/{target.db}" for address in target.sentinels]
    options: dict[str, Any] = {"master_name": target.master_name}
    if target.sentinel_password is not None:
        options["sentinel_kwargs"] = {"password": target.sentinel_password}
    return ";".join(urls), options


def execute_each(pipe: redis.client.Pipeline) -> list[Any]:
    """Run a pipeline and return one reply per command: its result, or the error Redis gave
    it, or for every command the error that stopped the round trip (Redis unreachable).
    The count is taken first: redis-py empties the pipeline even when the round trip fails."""
    commands = len(pipe)
    try:
        return pipe.execute(raise_on_error=False)
    except redis.RedisError as exc:
        return [exc] * commands
