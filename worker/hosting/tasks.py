"""Thin tasks: run a drain round, turn error families into a retry with backoff or a hand-over."""

from __future__ import annotations

import redis

from worker.hosting import process_resources, supervisor
from worker.hosting.celery_app import app
from zenoti_ingest import backoff, contract, errors, logs, metrics

log = logs.get_logger(__name__)


@app.task(name=contract.DRAIN_TASK, bind=True, max_retries=None)
def drain_slot(self, hostname: str, slot: int, token: str) -> int:
    """Drain the stream for one round as consumer `hostname:slot`, then pass the slot on.

    Transient failures (Postgres or Redis down, deadlock) retry with capped exponential backoff
    and jitter; the entries of the failed batch stay pending in the stream meanwhile and are
    taken up again, by this slot or another, once it works again.
    """
    res = process_resources.get()
    settings = res.settings
    try:
        if not res.leases.holds(hostname, slot, token):
            log.info("drain_token_retired", slot=slot)  # another token owns the slot now
            return 0
        try:
            result = res.drainer.round(
                f"{hostname}:{slot}", lambda: res.leases.renew(hostname, slot, token)
            )
        except Exception as exc:
            # Transient, or a bug of ours: the batch's entries stay pending either way, so the
            # slot backs off and tries again rather than dying with its token.
            if not isinstance(exc, errors.TransientError):
                log.exception("drain_failed", slot=slot, error_type=type(exc).__name__)
            countdown = backoff.delay_seconds(
                self.request.retries, settings.retry_base_seconds, settings.retry_max_seconds
            )
            res.drainer.recorder.inc(metrics.DRAIN_RETRIES, _error_kind(exc))
            res.drainer.recorder.flush()
            next_token = res.leases.hand_over(hostname, slot, token, extra_seconds=countdown)
            log.warning(
                "drain_retried",
                slot=slot,
                reason=str(exc),
                attempt=self.request.retries + 1,
                retry_in_seconds=round(countdown, 2),
            )
            if next_token is None:
                return 0
            raise self.retry(
                args=(hostname, slot, next_token), countdown=countdown, exc=exc
            ) from None
        next_token = res.leases.hand_over(hostname, slot, token)
    except redis.RedisError as exc:
        # The broker is this same Redis: nothing can be re-published now. The worker starts a
        # fresh token for the slot once Redis answers and the lease has expired.
        log.error("drain_redis_unavailable", slot=slot, reason=type(exc).__name__)
        return 0
    if next_token is not None:
        supervisor.schedule(self.app, hostname, slot, next_token)
    if result.deliveries:
        log.info("drain_round", slot=slot, deliveries=result.deliveries, batches=result.batches)
    return result.deliveries


def _error_kind(exc: Exception) -> str:
    """A bounded label for a failed round: the class of what went wrong underneath (a
    psycopg or redis error class), or `unexpected` for a bug of ours."""
    if not isinstance(exc, errors.TransientError):
        return "unexpected"
    return type(exc.__cause__).__name__ if exc.__cause__ is not None else type(exc).__name__
