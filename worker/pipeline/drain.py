"""One drain round: claim batches from the stream, write them, acknowledge after commit."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg_pool
import redis

from worker.pipeline import batch, settled
from zenoti_ingest import db, errors, logs, metrics, stream
from zenoti_ingest.settings import Settings

log = logs.get_logger(__name__)


@dataclass
class RoundResult:
    batches: int = 0
    deliveries: int = 0


class Drainer:
    """What one worker process needs to drain: the stream, a Postgres pool, the limits."""

    def __init__(
        self, settings: Settings, client: redis.Redis, pool: psycopg_pool.ConnectionPool
    ) -> None:
        self.settings = settings
        self.stream = stream.Consumer(client, settings)
        self.pool = pool
        self.recorder = metrics.Recorder(client, settings.redis_prefix, enabled=settings.metrics)

    def round(self, consumer: str, still_owner: Callable[[], bool]) -> RoundResult:
        """Drain for up to drain_round_seconds; TransientError leaves unwritten entries pending.

        `still_owner` is asked after each batch, to stop early when the slot changed hands.
        Postgres is checked first, so that while it is down entries stay unread in Redis and
        their delivery counts (which decide when a delivery is poison) do not grow.
        """
        settings = self.settings
        with db.transaction(self.pool) as conn:
            conn.execute("SELECT 1")
        result = RoundResult()
        self._recover(consumer, result)
        deadline = time.monotonic() + settings.drain_round_seconds
        while (left_ms := int((deadline - time.monotonic()) * 1000)) > 0:
            entries = self.stream.read_new(
                consumer, settings.batch_size, min(settings.read_block_ms, left_ms)
            )
            if entries:
                self._settle(entries, result)
                if not still_owner():  # the slot was given to another task: stop reading
                    break
        return result

    def _recover(self, consumer: str, result: RoundResult) -> None:
        """Settle what was handed out before and never acknowledged. An entry handed out
        often enough to be suspected of crashing workers is taken alone, so that a crash counts
        against it and not against the entries that happened to share its batch."""
        pending = self.stream.pending(consumer, self.settings.batch_size)
        threshold = self.settings.poison_after_deliveries
        ordinary = [p for p in pending if p.times_delivered + 1 < threshold]
        self._settle(self.stream.take(consumer, ordinary), result)
        for suspect in (p for p in pending if p.times_delivered + 1 >= threshold):
            self._settle(self.stream.take(consumer, [suspect]), result)

    def _settle(self, entries: list[stream.Entry], result: RoundResult) -> None:
        """Write entries in one batch (bad ones set aside by batch.write), then acknowledge."""
        if not entries:
            return
        items = [self._prepare(e) for e in entries if e.delivery is not None]
        if items:
            started = time.perf_counter()
            try:
                statuses = batch.write(self.pool, items)
            except errors.TransientError:
                self.stream.mark_failing(entries)
                raise
            settled.record(self.recorder, items, statuses, time.perf_counter() - started)
            result.batches += 1
        # Unreadable entries (deleted, not ours) are dropped too; the batch's metrics go to
        # Redis in the same round trip.
        self.stream.ack(entries, also=self.recorder.stage)
        result.deliveries += len(entries)

    def _prepare(self, entry: stream.Entry) -> batch.Prepared:
        retrying_for = time.time() - entry.failing_since if entry.failing_since else 0
        if retrying_for > self.settings.retry_for_seconds:
            return batch.reject(
                batch.prepare(entry.delivery, entry.times_delivered),
                errors.RetriesExhausted(
                    f"its batch kept failing with transient errors for {retrying_for:.0f} s "
                    f"(ZENOTI_INGEST_RETRY_FOR_SECONDS is {self.settings.retry_for_seconds:g})"
                ),
            )
        if entry.times_delivered <= self.settings.max_deliveries:
            return batch.prepare(entry.delivery, entry.times_delivered)
        # Not even parsed: parsing may be what crashed the worker each time.
        return batch.reject(
            batch.unparsed(entry.delivery, entry.times_delivered),
            errors.RetriesExhausted(
                f"handed to a worker {entry.times_delivered} times without being settled "
                "(it crashed or stalled the worker each time)"
            ),
        )
