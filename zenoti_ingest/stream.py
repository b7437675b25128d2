"""Both ends of the deliveries stream: its keys, the entry encoding, append, read, claim, ack.

The ingress appends each accepted delivery with a single XADD (`Producer`); Celery drain tasks
claim entries in batches through a consumer group (`Consumer`), acknowledge them only after
their rows are committed, and claim what a dead consumer held once it has been idle long
enough. Replay and reprocess append archived deliveries through the same `Producer`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from zenoti_ingest import contract, errors, logs, redis_clients
from zenoti_ingest.settings import Settings

log = logs.get_logger(__name__)

_INGEST_ID = b"ingest_id"
_RECEIVED_AT = b"received_at_us"
_PATH_HINT = b"path_hint"
_BODY = b"body"
_SOURCE = b"source"
_MODE = b"mode"


@dataclass(frozen=True, slots=True)
class Keys:
    """The Redis keys of one deployment, all under its prefix (ZENOTI_INGEST_REDIS_PREFIX)."""

    prefix: str

    @classmethod
    def of(cls, settings: Settings) -> Keys:
        return cls(settings.redis_prefix)

    @property
    def deliveries(self) -> str:
        """The stream the ingress appends deliveries to."""
        return f"{self.prefix}:deliveries"

    @property
    def group(self) -> str:
        """The workers' consumer group on that stream."""
        return f"{self.prefix}:workers"

    @property
    def failing(self) -> str:
        """A hash: entry id → when a transient error first stopped its batch (epoch seconds)."""
        return f"{self.prefix}:failing"


def encode(delivery: contract.Delivery) -> dict[bytes, bytes | str | int]:
    """A delivery as a stream entry's fields (XADD)."""
    fields: dict[bytes, bytes | str | int] = {
        _INGEST_ID: delivery.ingest_id,
        _RECEIVED_AT: delivery.received_at_us,
        _PATH_HINT: delivery.path_hint,
        _BODY: delivery.body,
    }
    if delivery.source:
        fields[_SOURCE] = delivery.source
    if delivery.mode:
        fields[_MODE] = delivery.mode
    return fields


def decode(fields: Mapping[bytes, bytes]) -> contract.Delivery:
    """A stream entry read back with a bytes (non-decoding) Redis client."""
    return contract.Delivery(
        ingest_id=fields[_INGEST_ID].decode(),
        received_at_us=int(fields[_RECEIVED_AT]),
        path_hint=fields.get(_PATH_HINT, b"").decode(),
        body=fields[_BODY],
        source=fields.get(_SOURCE, b"").decode(),
        mode=fields.get(_MODE, b"").decode(),
    )


class Producer:
    """The ingress's end (and replay's): one XADD per delivery; one per process."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        keys = Keys.of(settings)
        self._redis = client
        self._stream = keys.deliveries
        self._wait_replicas = settings.wait_replicas
        self._wait_timeout_ms = settings.wait_timeout_ms

    def publish(self, delivery: contract.Delivery) -> None:
        """Append the delivery; return only once Redis has it (then the caller may answer 202).

        With ZENOTI_INGEST_WAIT_REPLICAS set, also wait (one round trip, pipelined) until that
        many replicas have it; fewer in time → EnqueueFailed, and Zenoti retries (the copy
        already written is then a duplicate, which the worker recognizes).
        """
        try:
            if not self._wait_replicas:
                self._redis.xadd(self._stream, encode(delivery))
                return
            pipe = self._redis.pipeline(transaction=False)
            pipe.xadd(self._stream, encode(delivery))
            pipe.wait(self._wait_replicas, self._wait_timeout_ms)
            _, replicas = pipe.execute()
        except redis.RedisError as exc:  # down, timed out, OOM under noeviction, read-only
            raise errors.EnqueueFailed(f"redis: {type(exc).__name__}") from exc
        if replicas < self._wait_replicas:
            raise errors.EnqueueFailed(
                f"redis: {replicas} of {self._wait_replicas} replicas acknowledged in time"
            )

    def ready(self) -> bool:
        """Does the broker answer right now?"""
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False


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


class Consumer:
    """The worker's end: claim batches through the consumer group, recover, acknowledge."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        keys = Keys.of(settings)
        self._redis = client
        self._key, self._group, self._failing = keys.deliveries, keys.group, keys.failing
        self._claim_idle_ms = int(settings.claim_idle_seconds * 1000)

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

    def ack(
        self,
        entries: list[Entry],
        also: Callable[[redis.client.Pipeline], Callable[[list[Any]], None]] | None = None,
    ) -> None:
        """Acknowledge and delete settled entries (only after their rows are committed).

        `also` may add commands to the same round trip (the batch's metrics): it gets the
        pipeline after ours and returns what to call with the replies to its commands."""
        ids = [e.entry_id for e in entries]
        pipe = self._redis.pipeline(transaction=False)
        if ids:
            pipe.xack(self._key, self._group, *ids)
            pipe.xdel(self._key, *ids)
            pipe.hdel(self._failing, *ids)
        ours = len(pipe)
        settle = also(pipe) if also is not None else None
        if not len(pipe):
            return
        replies = redis_clients.execute_each(pipe)
        if settle is not None:
            settle(replies[ours:])
        failed = next((r for r in replies[:ours] if isinstance(r, Exception)), None)
        if failed is not None:
            self._call(_raise, failed)

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
            delivery = decode(fields)
        except (KeyError, ValueError, UnicodeDecodeError):
            # Its ingest id, if it has one, so that the line is found by grepping for it.
            ingest_id = fields.get(_INGEST_ID, b"").decode(errors="replace") or None
            log.error("stream_entry_malformed", entry_id=entry_id.decode(), ingest_id=ingest_id)
    return Entry(entry_id, delivery, times_delivered, failing_since)


def _raise(exc: Exception) -> None:
    """Re-raise a pipeline's error through Consumer._call, which translates it."""
    raise exc
