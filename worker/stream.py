"""The deliveries stream as a consumer-group reader: claim batches, recover, acknowledge."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from zenoti_ingest import contract, errors, logs
from zenoti_ingest.settings import Settings

log = logs.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Pending:
    """An entry handed out before and not acknowledged, and how often it was handed out."""

    entry_id: bytes
    times_delivered: int
    failing_since: float | None = None  # first transient failure (epoch s), if it had one


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry handed to this consumer, and how many times it has been handed out."""

    entry_id: bytes
    delivery: contract.Delivery | None  # None: the entry was deleted or is not ours to read
    times_delivered: int
    failing_since: float | None = None


class DeliveryStream:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._key = settings.stream_key
        self._group = settings.consumer_group
        self._claim_idle_ms = int(settings.claim_idle_seconds * 1000)
        # entry id → when a transient error first stopped its batch (epoch seconds)
        self._failing = f"{settings.redis_prefix}:failing"

    def ensure_group(self) -> None:
        """Create the stream and its consumer group if missing (from the first entry on)."""
        try:
            self._redis.xgroup_create(self._key, self._group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise errors.TransientError(f"redis: {exc}") from exc
        except redis.RedisError as exc:
            raise errors.TransientError(f"redis: {type(exc).__name__}") from exc

    def pending(self, consumer: str, count: int) -> list[Pending]:
        """Entries this consumer holds unacknowledged (it crashed, or a write failed), else
        entries other consumers have held longer than the claim timeout, now this consumer's.

        Nothing is handed out here (JUSTID claims, XPENDING reads): a delivery count grows only
        when `take` hands that entry out, so a crash counts against what was being processed.
        """
        own = self._own_pending(consumer, count)
        if not own:
            # With JUSTID, redis-py returns the claimed ids alone.
            claimed = self._call(
                self._redis.xautoclaim,
                self._key,
                self._group,
                consumer,
                self._claim_idle_ms,
                "0-0",
                count=count,
                justid=True,
            )
            if claimed:
                log.warning("deliveries_reclaimed", entries=len(claimed), consumer=consumer)
                own = self._own_pending(consumer, count)
        return own

    def take(self, consumer: str, pending: list[Pending]) -> list[Entry]:
        """Hand pending entries to `consumer` again. The delivery count, which bounds how often
        an entry may crash a worker, grows by one, except for entries whose last attempt ended
        in a transient error (their retries are bounded by time instead). Their mark is
        cleared now: if this attempt crashes the worker, the next one counts."""
        if not pending:
            return []
        entries = []
        for retrying, group in (
            (False, [p for p in pending if p.failing_since is None]),
            (True, [p for p in pending if p.failing_since is not None]),
        ):
            if not group:
                continue
            known = {p.entry_id: p for p in group}
            counts = {i: p.times_delivered + (0 if retrying else 1) for i, p in known.items()}
            # XCLAIM RETRYCOUNT sets the count: same value for a retry, one more otherwise.
            for count in sorted(set(counts.values())):
                ids = [i for i, c in counts.items() if c == count]
                reply = self._call(
                    self._redis.xclaim, self._key, self._group, consumer, 0, ids, retrycount=count
                )
                entries += [_entry(i, fields, count, known[i].failing_since) for i, fields in reply]
            if retrying:
                self._call(self._redis.hdel, self._failing, *known)
        return entries

    def mark_failing(self, entries: list[Entry]) -> None:
        """These entries' batch hit a transient error: remember since when, for their retries."""
        now = time.time()
        pipe = self._redis.pipeline(transaction=False)
        for entry in entries:
            pipe.hset(self._failing, entry.entry_id, entry.failing_since or now)
        self._call(pipe.execute)

    def read_new(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """Up to `count` entries never handed out before, waiting up to `block_ms` for one."""
        reply = self._call(
            self._redis.xreadgroup,
            self._group,
            consumer,
            {self._key: ">"},
            count=count,
            block=block_ms,
        )
        return [_entry(entry_id, fields, 1) for entry_id, fields in _entries(reply)]

    def ack(self, entries: list[Entry]) -> None:
        """Acknowledge and delete settled entries (only after their rows are committed)."""
        if not entries:
            return
        ids = [e.entry_id for e in entries]
        pipe = self._redis.pipeline(transaction=False)
        pipe.xack(self._key, self._group, *ids)
        pipe.xdel(self._key, *ids)
        pipe.hdel(self._failing, *ids)
        self._call(pipe.execute)

    def _own_pending(self, consumer: str, count: int) -> list[Pending]:
        rows = self._call(
            self._redis.xpending_range,
            self._key,
            self._group,
            "-",
            "+",
            count,
            consumername=consumer,
        )
        if not rows:
            return []
        ids = [p["message_id"] for p in rows]
        since = self._call(self._redis.hmget, self._failing, ids)
        return [
            Pending(p["message_id"], p["times_delivered"], float(s) if s else None)
            for p, s in zip(rows, since, strict=True)
        ]

    def _call(self, command, *args, **kwargs):
        try:
            return command(*args, **kwargs)
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis restarted without persistence: start again
                log.error("stream_group_missing", stream=self._key)
                self.ensure_group()
            raise errors.TransientError(f"redis: {str(exc)[:80]}") from exc
        except redis.RedisError as exc:
            raise errors.TransientError(f"redis: {type(exc).__name__}") from exc


def _entries(reply: list) -> list[tuple[bytes, dict | None]]:
    """XREADGROUP's [[stream, [(id, fields), ...]]] as [(id, fields)]."""
    return [item for _, items in reply or [] for item in items]


def _entry(
    entry_id: bytes, fields: dict | None, times_delivered: int, failing_since: float | None = None
) -> Entry:
    delivery = None
    if fields:
        try:
            delivery = contract.Delivery.from_fields(fields)
        except (KeyError, ValueError, UnicodeDecodeError):
            log.error("stream_entry_malformed", entry_id=entry_id.decode())
    return Entry(entry_id, delivery, times_delivered, failing_since)
