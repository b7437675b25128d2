"""Storage upkeep on the worker's timer: partitions created ahead, expired data dropped.

The drain supervisor's timer calls `tick` every ZENOTI_INGEST_STORAGE_CHECK_SECONDS (and once
at start); the work runs on a thread of its own so that the consumer's timer is never held up
by a lock wait or a partition drop. Every worker does this: the advisory lock in
zenoti_ingest/storage.py makes the others wait (partitions) or skip (expiry).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from zenoti_ingest import db, errors, logs, storage
from zenoti_ingest.settings import Settings

log = logs.get_logger(__name__)


class StorageUpkeep:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        """Start a round unless the last one is still running."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self.run, name="storage-upkeep", daemon=True)
        self._thread.start()

    def prepare(self) -> None:
        """Make this week's partitions before the drain starts (quick; once, at start), so that
        the first batches never wait behind an attach."""
        self._guarded(storage.ensure_partitions)

    def run(self) -> None:
        expired = self._guarded(lambda conn, now: storage.maintain(conn, self.settings, now))
        if expired:
            log.info("storage_upkeep_expired", items=len(expired))

    def _guarded(self, work: Callable[[psycopg.Connection, datetime], Any]) -> Any:
        try:
            with db.connect(self.settings.database_url, autocommit=True) as conn:
                return work(conn, datetime.now(UTC))
        except (errors.ZenotiIngestError, OSError, psycopg.Error) as exc:
            # Postgres down, or a lock not granted in time: the next round tries again.
            log.warning("storage_upkeep_failed", error_type=type(exc).__name__)
            return None
