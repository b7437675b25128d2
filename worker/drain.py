"""One drain round: claim batches from the stream, write them, acknowledge after commit."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg_pool
import redis

from worker import process, stream
from zenoti_ingest import db, errors, logs
from zenoti_ingest.settings import Settings

log = logs.get_logger(__name__)


@dataclass
class RoundResult:
    batches: int = 0
    deliveries: int = 0


class Drainer:
    """What one worker process needs to drain: the stream, a Postgres pool, the limits."""

    def __init__(self, settings: Settings, client: redis.Redis,
                 pool: psycopg_pool.ConnectionPool) -> None:
        self.settings = settings
        self.stream = stream.DeliveryStream(client, settings)
        self.pool = pool

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
        self._settle(self.stream.recover(consumer, settings.batch_size), result)
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

    def _settle(self, entries: list[stream.Entry], result: RoundResult) -> None:
        """Write and acknowledge entries: normal ones as one batch, suspicious ones alone."""
        if not entries:
            return
        settings = self.settings
        unreadable = [e for e in entries if e.delivery is None]
        batch, alone = [], []
        for entry in entries:
            if entry.delivery is None:
                continue
            if entry.times_delivered > settings.max_deliveries:
                # Not even parsed: parsing may be what crashed the worker each time.
                item = process.reject(
                    process.unparsed(entry.delivery, entry.times_delivered),
                    errors.RetriesExhausted(
                        f"handed to a worker {entry.times_delivered} times without being "
                        "settled (it crashed or stalled the worker each time)"
                    ),
                )
                alone.append((entry, item))
            elif entry.times_delivered >= settings.poison_after_deliveries:
                # It may be what crashed a worker: isolate it from the rest.
                alone.append((entry, process.prepare(entry.delivery, entry.times_delivered)))
            else:
                batch.append((entry, process.prepare(entry.delivery, entry.times_delivered)))
        self.stream.ack(unreadable)
        if batch:
            process.write(self.pool, [item for _, item in batch])
            self.stream.ack([entry for entry, _ in batch])
            result.batches += 1
        for entry, item in alone:
            process.write(self.pool, [item])
            self.stream.ack([entry])
        result.deliveries += len(entries)
