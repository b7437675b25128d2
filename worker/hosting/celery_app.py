"""The Celery app; each at-least-once setting with a comment saying why.

Celery carries only drain tokens here, a few per worker, never the deliveries themselves: those
wait in a Redis stream with a consumer group (see worker/stream.py), which is what makes a
delivery come back after a worker dies, whatever happens to the token.
"""

from __future__ import annotations

import redis
from celery import Celery
from kombu.transport import redis as kombu_redis

from worker.hosting import supervisor
from zenoti_ingest import logs, redis_clients
from zenoti_ingest import settings as settings_module

settings = settings_module.get_settings()
logs.configure(settings)


class _SentinelChannel(kombu_redis.SentinelChannel):
    """kombu's Sentinel channel, made closable once its connection is gone.

    Seen in tests/e2e/test_sentinel_failover.py (kombu 5.7.0): when the primary dies, Celery
    first collects the broken connection (which drops the transport's `client`), then closes
    it; closing the channel requeues the unacknowledged messages through a new pool, whose
    parameters are read from that `client`: AttributeError, which Celery takes for an
    unrecoverable error, and the worker exits. Raised as a connection error instead, the close
    is ignored like any on a broken connection and Celery reconnects (to the new primary). The
    drain tokens not requeued then are harmless: the supervisor replaces a slot's token once
    its lease expires, and kombu restores the unacknowledged copy after the visibility timeout
    (a lease then retires it).
    """

    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection is closed already")
        return super()._connparams(asynchronous)


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = _SentinelChannel


# The same Redis as the stream; for the Sentinel form, kombu's Sentinel transport (ours).
broker_url, sentinel_options = redis_clients.celery_broker(settings)
app = Celery("zenoti_ingest", broker=broker_url, include=["worker.hosting.tasks"])
if sentinel_options:
    app.conf.broker_transport = f"{__name__}:SentinelTransport"
app.conf.update(
    # A token is acknowledged after its round, and requeued if its process dies mid-round.
    # Losing one anyway is harmless: the worker starts a new one when its lease expires.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # One token per pool process at a time: a prefetched token would just wait.
    worker_prefetch_multiplier=1,
    # Each worker gets its own queue (<hostname>.dq2); its tokens go there and nowhere else.
    worker_direct=True,
    broker_transport_options={
        # An unacknowledged token comes back after this; it must outlast the longest retry
        # countdown, or the token is duplicated (the lease then retires the copy).
        "visibility_timeout": int(settings.retry_max_seconds * 2 + 60),
        "global_keyprefix": f"{settings.redis_prefix}:celery:",
        **sentinel_options,
    },
    broker_connection_retry_on_startup=True,
    # A broker connection to a primary demoted under it (a managed Redis's failover behind one
    # endpoint) gets READONLY: without this Celery exits (celery#7946); with it, it reconnects.
    broker_channel_error_retry=True,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,  # our logs are structured lines on stderr already
    worker_send_task_events=False,
)
app.steps["consumer"].add(supervisor.DrainSupervisor)
