"""Per-process Redis client, Postgres pool, stream drainer and slot leases, made after fork."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import redis

from worker.hosting import leases
from worker.pipeline import drain
from zenoti_ingest import db, redis_clients
from zenoti_ingest import settings as settings_module
from zenoti_ingest.settings import Settings

LEASE_TTL_SECONDS_MIN = 10.0


@dataclass(frozen=True)
class Resources:
    settings: Settings
    redis: redis.Redis
    drainer: drain.Drainer
    leases: leases.Leases


def lease_ttl_seconds(settings: Settings) -> float:
    """A slot's lease outlives a normal round with room to spare."""
    return max(LEASE_TTL_SECONDS_MIN, 4 * settings.drain_round_seconds)


@functools.cache
def get() -> Resources:
    settings = settings_module.get_settings()
    client = redis_clients.for_worker(settings)
    pool = db.create_pool(settings)
    return Resources(
        settings=settings,
        redis=client,
        drainer=drain.Drainer(settings, client, pool),
        leases=leases.Leases(client, settings.redis_prefix, lease_ttl_seconds(settings)),
    )


# A forked pool process must not share its parent's sockets.
os.register_at_fork(after_in_child=get.cache_clear)
