"""The Celery app; each at-least-once setting with a comment saying why.

Celery carries only drain tokens here, a few per worker, never the deliveries themselves: those
wait in a Redis stream with a consumer group (see worker/stream.py), which is what makes a
delivery come back after a worker dies, whatever happens to the token.
"""

from __future__ import annotations

from celery import Celery

from worker.hosting import supervisor
from zenoti_ingest import logs
from zenoti_ingest import settings as settings_module

settings = settings_module.get_settings()
logs.configure(settings)

app = Celery("zenoti_ingest", broker=settings.redis_url, include=["worker.hosting.tasks"])
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
    },
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,  # our logs are structured lines on stderr already
    worker_send_task_events=False,
)
app.steps["consumer"].add(supervisor.DrainSupervisor)
