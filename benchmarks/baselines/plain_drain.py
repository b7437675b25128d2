"""The ceiling to compare the worker with: one plain Python process, no Celery, draining the
stream 500 at a time through the very same parse, archive and upsert code (worker.pipeline.drain).

Run with the same environment as `zenoti-ingest worker`; exits when the stream is empty.
"""

from __future__ import annotations

import redis

from worker.pipeline import drain
from zenoti_ingest import db, logs, stream
from zenoti_ingest import settings as settings_module


def main() -> None:
    settings = settings_module.get_settings()
    logs.configure(settings)
    client = redis.Redis.from_url(settings.redis_url)
    drainer = drain.Drainer(settings, client, db.create_pool(settings))
    drainer.stream.ensure_group()
    while client.xlen(stream.Keys.of(settings).deliveries):
        drainer.round("plain-drain", lambda: True)


if __name__ == "__main__":
    main()
