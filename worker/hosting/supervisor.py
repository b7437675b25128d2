"""A worker bootstep that keeps one drain token in flight per pool process.

It runs in the worker's main process, on the consumer's timer: at start, and every second
after, every slot without a live lease (first start, or its token was lost with a killed
process) gets a new token on this worker's own queue.
"""

from __future__ import annotations

import celery
import redis
from celery import bootsteps
from celery.utils import worker_direct

from worker.hosting import leases, process_resources, upkeep
from zenoti_ingest import contract, errors, logs, redis_clients, stream
from zenoti_ingest import settings as settings_module

log = logs.get_logger(__name__)

SUPERVISE_INTERVAL_SECONDS = 1.0
SUPERVISOR_TIMEOUT_SECONDS = 5.0  # it runs on the consumer's timer: never block it long


class DrainSupervisor(bootsteps.StartStopStep):
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self.tref = None
        self.upkeep_tref = None

    def start(self, c) -> None:
        self.app = c.app
        settings = settings_module.get_settings()
        client = redis_clients.for_worker(settings, timeout_seconds=SUPERVISOR_TIMEOUT_SECONDS)
        self.stream = stream.Consumer(client, settings)
        self.leases = leases.Leases(
            client, settings.redis_prefix, process_resources.lease_ttl_seconds(settings)
        )
        self.hostname = c.hostname
        self.slots = c.controller.concurrency
        log.info(
            "drain_supervisor_started",
            hostname=self.hostname,
            slots=self.slots,
            stream=stream.Keys.of(settings).deliveries,
        )
        try:  # a restarted worker takes its slots (and their pending entries) back at once
            for slot in range(self.slots):
                self.leases.forget(self.hostname, slot)
        except redis.RedisError as exc:
            log.warning("drain_supervisor_waiting", reason=str(exc)[:120])
        # Partitions ahead and expiry (worker/hosting/upkeep.py): this week's before the
        # first drain, then on this timer, the work off its thread.
        storage_upkeep = upkeep.StorageUpkeep(settings)
        storage_upkeep.prepare()
        self.top_up()
        self.tref = c.timer.call_repeatedly(SUPERVISE_INTERVAL_SECONDS, self.top_up, priority=10)
        storage_upkeep.tick()
        self.upkeep_tref = c.timer.call_repeatedly(
            settings.storage_check_seconds, storage_upkeep.tick, priority=20
        )

    def top_up(self) -> None:
        try:
            self.stream.ensure_group()
            for slot in range(self.slots):
                token = self.leases.claim(self.hostname, slot)
                if token is not None:
                    schedule(self.app, self.hostname, slot, token)
                    log.info("drain_slot_started", slot=slot)
        except (redis.RedisError, errors.TransientError) as exc:
            log.warning("drain_supervisor_waiting", reason=str(exc)[:120])

    def stop(self, c) -> None:
        for tref in (self.tref, self.upkeep_tref):
            if tref is not None:
                tref.cancel()
        self.tref = self.upkeep_tref = None


def schedule(app: celery.Celery, hostname: str, slot: int, token: str) -> None:
    """Queue a drain token on the worker's own queue: a slot belongs to one worker. Sent by
    name, so that hosting the task and scheduling it don't import each other."""
    app.send_task(contract.DRAIN_TASK, args=(hostname, slot, token), queue=worker_direct(hostname))
