"""What a settled batch came to: its metrics, and one log line with its counts by outcome."""

from __future__ import annotations

import time
from collections import Counter

from worker.pipeline import batch, handlers
from zenoti_ingest import logs, metrics

log = logs.get_logger(__name__)

# Outcomes that settle a delivery for the first time (a reprocess or an entry handed out again
# after a crash settles nothing new: it is not counted twice).
SETTLED_OUTCOMES = frozenset({"processed", "duplicate", "dead"})
OTHER = "other"  # the label of an event type nobody handles: label values stay bounded


def record(
    recorder: metrics.Recorder,
    items: list[batch.Prepared],
    statuses: dict[str, str],
    seconds: float,
) -> None:
    """Count the batch's outcomes into the recorder (they go to Redis with the batch's
    acknowledgement: drain.py), and log the batch's line."""
    now = time.time()
    outcomes: Counter[str] = Counter()
    recorder.observe(metrics.BATCH_SIZE, len(items))
    recorder.observe(metrics.BATCH_SECONDS, seconds)
    for item in items:
        status = statuses.get(item.delivery.ingest_id, "")
        outcomes[status] += 1
        if status not in SETTLED_OUTCOMES:
            continue
        recorder.inc(metrics.SETTLED, _event_type(item), status)
        if status == "dead":
            failure = item.rejection.failure_class if item.rejection else "database"
            recorder.inc(metrics.DEAD_LETTERS, failure)
        recorder.observe(metrics.END_TO_END_SECONDS, now - item.delivery.received_at_us / 1e6)
    log.info("batch_settled", deliveries=len(items), seconds=round(seconds, 4), **outcomes)


def _event_type(item: batch.Prepared) -> str:
    event_type = item.event.event_type if item.event else item.delivery.path_hint
    return event_type if event_type in handlers.HANDLERS else OTHER
