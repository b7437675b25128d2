"""A worker bootstep that keeps one drain token in flight per pool process.

It runs in the worker's main process, on the consumer's timer: at start, and every second
after, every slot without a live lease (first start, or its token was lost with a killed
process) gets a new token on this worker's own queue.
"""

from __future__ import annotations

import redis
from celery import bootsteps

from worker import leases, resources, stream
from zenoti_ingest import errors, logs
from zenoti_ingest import settings as settings_module

log = logs.get_logger(__name__)

SUPERVISE_INTERVAL_SECONDS = 1.0


class DrainSupervisor(bootsteps.StartStopStep):
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self.tref = None

    def start(self, c) -> None:
        settings = settings_module.get_settings()
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=5
        )
        self.stream = stream.DeliveryStream(client, settings)
        self.leases = leases.Leases(
            client, settings.redis_prefix, resources.lease_ttl_seconds(settings)
        )
        self.hostname = c.hostname
        self.slots = c.controller.concurrency
        log.info(
            "drain_supervisor_started",
            hostname=self.hostname,
            slots=self.slots,
            stream=settings.stream_key,
        )
        try:  # a restarted worker takes its slots (and their pending entries) back at once
            for slot in range(self.slots):
                self.leases.forget(self.hostname, slot)
        except redis.RedisError as exc:
            log.warning("drain_supervisor_waiting", reason=str(exc)[:120])
        self.top_up()
        self.tref = c.timer.call_repeatedly(SUPERVISE_INTERVAL_SECONDS, self.top_up, priority=10)

    def top_up(self) -> None:
        from worker import tasks  # imported late: tasks imports the app that imports this

        try:
            self.stream.ensure_group()
            for slot in range(self.slots):
                token = self.leases.claim(self.hostname, slot)
                if token is not None:
                    tasks.schedule(self.hostname, slot, token)
                    log.info("drain_slot_started", slot=slot)
        except (redis.RedisError, errors.TransientError) as exc:
            log.warning("drain_supervisor_waiting", reason=str(exc)[:120])

    def stop(self, c) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
