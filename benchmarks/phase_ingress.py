"""Phase 1: our ingress under load, against the same server running the baselines."""

from __future__ import annotations

import functools
import importlib.util
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import http_load
import procs
import redis
import servers
import stores
from baselines import lpush_app
from plan import Plan

from zenoti_ingest import stream

REDIS_DB = 10
STABLE_SECONDS = 0.2


def stream_length(client: redis.Redis) -> int:
    return client.xlen(stream.Keys.of(servers.OURS).deliveries)


def list_length(client: redis.Redis) -> int:
    return client.llen(lpush_app.KEY)


@dataclass(frozen=True)
class App:
    key: str
    label: str
    command: Callable[[int], list[str]]  # port → command line
    enqueued: Callable[[redis.Redis], int]  # what it has put in Redis so far


APPS = (
    App("ours", "ours (granian, 2 workers)", servers.ours_serve_command, stream_length),
    App(
        "lpush",
        "read body + LPUSH (granian, 2 workers)",
        functools.partial(servers.granian_command, "baselines.lpush_app:app"),
        list_length,
    ),
    App(
        "flask",
        "Flask + Celery apply_async (granian, 2 workers)",
        functools.partial(servers.granian_command, "baselines.flask_app:app"),
        stores.celery_queue_length,
    ),
    App(
        "lpush_gunicorn",
        "read body + LPUSH (gunicorn sync -w4)",
        functools.partial(servers.gunicorn_command, "baselines.lpush_app:app"),
        list_length,
    ),
)


@dataclass(frozen=True)
class AppResult:
    app: App
    load: http_load.LoadResult
    enqueued: int  # entries added during the measured load, counted after the server stopped
    connections: int

    @property
    def all_enqueued(self) -> bool:
        """Every 2xx is in Redis; at most one request per connection was still in flight (served
        but never read) when the load generator stopped."""
        return 0 <= self.enqueued - self.load.accepted <= self.connections

    def check(self) -> str:
        verdict = "ok" if self.all_enqueued else "MISMATCH"
        return f"{self.enqueued:,} in Redis for {self.load.accepted:,} 2xx: {verdict}"


def settled(enqueued: Callable[[redis.Redis], int], client: redis.Redis) -> int:
    """The count once it has not moved for STABLE_SECONDS (the server has finished the
    requests it was given)."""
    readings = [(time.monotonic(), enqueued(client))]

    def unchanged() -> bool:
        if time.monotonic() - readings[-1][0] < STABLE_SECONDS:
            return False
        readings.append((time.monotonic(), enqueued(client)))
        return readings[-1][1] == readings[-2][1]

    procs.wait_until(unchanged, timeout=30, what="the enqueued count to settle")
    return readings[-1][1]


def load_ours(
    group: procs.Group, label: str, server: servers.Server, body_file: Path, seconds: int,
    connections: int, client: redis.Redis,
) -> http_load.LoadResult:  # fmt: skip
    """A 2-second warm-up, then `seconds` of closed-loop load on our ingress; says how many
    deliveries reached the stream (client's) for how many 2xx."""
    load = functools.partial(
        http_load.closed_loop, group, url=server.webhook_url, body_file=body_file,
        connections=connections,
    )  # fmt: skip
    name = "load-" + re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    load(name=f"{name}-warmup", seconds=2)
    before = settled(stream_length, client)
    result = load(name=name, seconds=seconds)
    enqueued = settled(stream_length, client) - before
    procs.say(
        f"{label}: {result.rps:,.0f} requests/s, p99 {result.p99_ms:.1f} ms, "
        f"{result.failed} failed, {enqueued:,} enqueued for {result.accepted:,} 2xx"
    )
    return result


def run(group: procs.Group, plan: Plan, body_file: Path) -> dict[str, AppResult]:
    apps = [
        app for app in APPS if app.key != "lpush_gunicorn" or importlib.util.find_spec("gunicorn")
    ]  # gunicorn is only for reference: skipped when not installed
    with stores.redis_database(REDIS_DB) as client:
        return {app.key: measure(group, plan, app, client, body_file) for app in apps}


def measure(
    group: procs.Group, plan: Plan, app: App, client: redis.Redis, body_file: Path
) -> AppResult:
    procs.say(
        f"ingress: {app.label}, {plan.connections} connections, "
        f"{plan.load_seconds} s with {http_load.tool()}"
    )
    port = procs.free_port()
    url = stores.redis_url(REDIS_DB)
    env = {**servers.ours_env(url, "", port), **servers.baseline_env(url)}
    with group.scope():  # ends with a graceful stop: what the server answered is in Redis
        server = servers.start_server(group, f"ingress-{app.key}", app.command(port), env, port)
        load = functools.partial(
            http_load.closed_loop,
            group,
            url=server.webhook_url,
            body_file=body_file,
            connections=plan.connections,
        )
        load(name=f"load-{app.key}-warmup", seconds=plan.warmup_seconds)
        before = settled(app.enqueued, client)  # the warm-up's last requests included
        result = load(name=f"load-{app.key}", seconds=plan.load_seconds)
    outcome = AppResult(app, result, app.enqueued(client) - before, plan.connections)
    client.flushdb()
    procs.say(
        f"  {result.rps:,.0f} requests/s, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms, {result.failed} failed; {outcome.check()}"
    )
    return outcome
