"""The deliveries stream as it is now: what waits, for how long, and who holds what.

Read at scrape time by the metrics exporter and by `zenoti-ingest stats`, from Redis alone, in
one pipeline of O(1)-ish commands (XINFO, XPENDING summary, one XRANGE of one entry), so a
scrape costs the same however long the backlog is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

from zenoti_ingest import stream


@dataclass(frozen=True)
class Consumer:
    name: str  # <celery node name>:<slot>
    pending: int  # entries handed to it and not acknowledged
    idle_seconds: float  # since it last read or claimed


@dataclass(frozen=True)
class QueueState:
    backlog: int  # entries in the stream: waiting, or handed out and not acknowledged
    lag: int  # entries no consumer has been handed yet
    pending: int  # entries handed out and not acknowledged
    oldest_waiting_seconds: float  # age of the oldest entry in the stream (0 when empty)
    consumers: tuple[Consumer, ...] = field(default=())


def read(client: redis.Redis, keys: stream.Keys, now: float | None = None) -> QueueState:
    """The stream's state; an empty state when the stream or its group does not exist yet."""
    now = time.time() if now is None else now
    pipe = client.pipeline(transaction=False)
    pipe.xlen(keys.deliveries)
    pipe.xrange(keys.deliveries, count=1)
    pipe.xinfo_groups(keys.deliveries)
    pipe.xinfo_consumers(keys.deliveries, keys.group)
    replies = pipe.execute(raise_on_error=False)
    backlog = replies[0] if isinstance(replies[0], int) else 0
    first = replies[1] if isinstance(replies[1], list) else []
    groups = replies[2] if isinstance(replies[2], list) else []
    consumers = replies[3] if isinstance(replies[3], list) else []
    group = next((g for g in groups if _text(g["name"]) == keys.group), None)
    oldest = 0.0
    if first:
        milliseconds = int(_text(first[0][0]).split("-")[0])
        oldest = max(0.0, now - milliseconds / 1000)
    pending = int(group["pending"]) if group else 0
    return QueueState(
        backlog=backlog,
        # Settled entries are deleted (XDEL after XACK), so what the stream holds is either
        # pending or unread. (XINFO's own `lag` turns nil once entries have been deleted.)
        lag=max(0, backlog - pending),
        pending=pending,
        oldest_waiting_seconds=oldest,
        consumers=tuple(
            Consumer(_text(c["name"]), int(c["pending"]), int(c["idle"]) / 1000) for c in consumers
        ),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
