"""stats: is Zenoti reaching us, do the workers keep up, what fails; from Redis and Postgres.

No Prometheus needed: request and settle rates come from the metrics' minute hashes, the queue
from the stream itself, dead letters from Postgres. Either service may be down: what the other
holds is still shown, the missing part says why, and the command exits UNAVAILABLE.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click
import psycopg
import redis
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cli import dlq, exits
from worker.hosting import leases
from zenoti_ingest import errors, metrics, queue_state, redis_clients, services, sql, stream
from zenoti_ingest.settings import Settings

NEWEST_FAILURES = 5
OUTCOMES = ("processed", "duplicate", "dead")  # what settles a delivery
REDIS_TIMEOUT_SECONDS = 5.0
PIPED_WIDTH = 160  # columns of a table written to a pipe or file, so that no id is cut
_now = time.time  # the clock of every reading (tests fix it)
_sleep = time.sleep  # between --watch refreshes (tests end the loop through it)


@dataclass
class Snapshot:
    """What stats shows, read at one moment; a part is None when its service did not answer
    (`unreachable` says which, and why)."""

    at: float
    sources: list[dict[str, Any]] | None = None
    queue: dict[str, Any] | None = None
    consumers: list[dict[str, Any]] | None = None
    settled_per_minute: dict[str, dict[str, float]] | None = None
    dead_letters: dict[str, int] | None = None
    newest_failures: list[dict[str, Any]] | None = None
    unreachable: dict[str, str] = field(default_factory=dict)


def read(settings: Settings, client: redis.Redis) -> Snapshot:
    """Everything stats shows, from Redis (rates, queue, workers) and Postgres (dead letters)."""
    snapshot = Snapshot(at=_now())
    try:
        _read_redis(settings, client, snapshot)
    except redis.RedisError as exc:
        snapshot.unreachable["redis"] = (
            f"redis unreachable at {services.redact(settings.redis_url)} ({type(exc).__name__})"
        )
        snapshot.sources = snapshot.queue = snapshot.consumers = None  # none, not half
        snapshot.settled_per_minute = None
    try:
        _read_postgres(settings, snapshot)
    except errors.ZenotiIngestError as exc:  # db.connect's: says what kind, never a password
        snapshot.unreachable["postgres"] = str(exc)
    except psycopg.errors.UndefinedTable:
        snapshot.unreachable["postgres"] = "no schema yet: run `zenoti-ingest migrate`"
    except psycopg.Error as exc:  # the server's text can quote values: its class only
        snapshot.unreachable["postgres"] = f"postgres failed: {type(exc).__name__}"
    return snapshot


def _windows(rates: dict[int, float]) -> dict[str, float]:
    return {f"{n}m": round(rates.get(n, 0.0), 2) for n in metrics.WINDOWS_MINUTES}


def _read_redis(settings: Settings, client: redis.Redis, snapshot: Snapshot) -> None:
    prefix, now = settings.redis_prefix, snapshot.at
    requests = metrics.per_minute(client, prefix, metrics.REQUESTS, now)
    last = metrics.counts(client, prefix, metrics.LAST_RECEIVED)
    by_source: dict[str, dict[str, dict[int, float]]] = defaultdict(dict)
    for (source, outcome), rates in requests.items():
        by_source[source][outcome] = rates
    sources = []
    for source in sorted(set(by_source) | {labels[0] for labels in last}):
        outcomes = by_source.get(source, {})
        total = {n: sum(r[n] for r in outcomes.values()) for n in metrics.WINDOWS_MINUTES}
        received = last.get((source,))
        sources.append(
            {
                "source": source,
                "last_received_at": _iso(received),
                "last_received_seconds_ago": round(now - received, 1) if received else None,
                "requests_per_minute": _windows(total),
                "requests_per_minute_by_outcome": {
                    outcome: _windows(rates) for outcome, rates in sorted(outcomes.items())
                },
            }
        )
    snapshot.sources = sources
    state = queue_state.read(client, stream.Keys.of(settings), now)
    snapshot.queue = {
        "backlog": state.backlog,
        "lag": state.lag,
        "pending": state.pending,
        "oldest_waiting_seconds": round(state.oldest_waiting_seconds, 1),
        "drain_slots_alive": leases.live_slots(client, prefix),
    }
    snapshot.consumers = [
        {"name": c.name, "pending": c.pending, "idle_seconds": round(c.idle_seconds, 1)}
        for c in state.consumers
    ]
    settled: dict[str, dict[int, float]] = {o: {} for o in OUTCOMES}
    for (_, outcome), rates in metrics.per_minute(client, prefix, metrics.SETTLED, now).items():
        for n, rate in rates.items():
            settled.setdefault(outcome, {})[n] = settled[outcome].get(n, 0.0) + rate
    snapshot.settled_per_minute = {outcome: _windows(r) for outcome, r in settled.items()}


def _read_postgres(settings: Settings, snapshot: Snapshot) -> None:
    with dlq.connect(settings) as conn:
        dead = conn.execute(sql.queries["count_dead_by_class"]).fetchall()
        failures = conn.execute(
            sql.queries["stats_newest_failures"], {"limit": NEWEST_FAILURES}
        ).fetchall()
    snapshot.dead_letters = {failure_class: count for failure_class, count in dead}
    snapshot.newest_failures = [
        {
            "ingest_id": str(ingest_id),
            "failed_at": dlq.jsonable(failed_at),
            "source": source,
            "event_type": event_type,
            "failure_class": failure_class,
            "reason": reason,
        }
        for ingest_id, failed_at, source, event_type, failure_class, reason in failures
    ]


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch else None


def as_json(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "at": _iso(snapshot.at),
        "sources": snapshot.sources,
        "queue": snapshot.queue,
        "consumers": snapshot.consumers,
        "settled_per_minute": snapshot.settled_per_minute,
        "dead_letters": snapshot.dead_letters,
        "newest_failures": snapshot.newest_failures,
        "unreachable": snapshot.unreachable,
    }


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def console() -> Console:
    """Rich's console on stdout; on a pipe or in a file, wide enough that no id is cut."""
    out = Console(soft_wrap=False)
    if not out.is_terminal:
        out.width = max(out.width, PIPED_WIDTH)
    return out


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        numeric = column.endswith(("1m", "5m", "15m", "COUNT", "PENDING"))
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column != "REASON")
    return table


def _rates(windows: dict[str, float]) -> list[str]:
    return [f"{windows[f'{n}m']:.1f}" for n in metrics.WINDOWS_MINUTES]


def render(snapshot: Snapshot) -> RenderableType:
    """The snapshot as tables; a part whose service did not answer says so instead."""
    parts: list[RenderableType] = [
        Text(f"zenoti-ingest stats at {dlq.when(datetime.fromtimestamp(snapshot.at, UTC))}")
    ]
    if snapshot.sources is not None:
        parts += _redis_parts(snapshot)
    if snapshot.dead_letters is not None:
        parts += _postgres_parts(snapshot)
    for service, reason in snapshot.unreachable.items():
        parts.append(Text(f"{service.capitalize()} part not shown: {reason}", style="bold red"))
    return Group(*parts)


def _redis_parts(snapshot: Snapshot) -> list[RenderableType]:
    sources = _table(
        "Requests per minute", "SOURCE", "LAST DELIVERY", "1m", "5m", "15m", "OUTCOMES (15m)"
    )
    for s in snapshot.sources:
        outcomes = s["requests_per_minute_by_outcome"]
        sources.add_row(
            s["source"] or "(default)",
            _ago(s["last_received_seconds_ago"]),
            *_rates(s["requests_per_minute"]),
            ", ".join(f"{o} {r['15m']:.1f}" for o, r in outcomes.items()),
        )
    if not snapshot.sources:
        sources.add_row("(no request counted yet)")
    queue = snapshot.queue
    line = Text(
        f"Stream: {queue['backlog']} in the stream, {queue['lag']} not yet handed to a worker, "
        f"{queue['pending']} handed out and not acknowledged; oldest waiting "
        f"{queue['oldest_waiting_seconds']:.1f} s; {queue['drain_slots_alive']} drain slot(s) "
        "alive"
    )
    consumers = _table("Workers (stream consumers)", "CONSUMER", "PENDING", "IDLE")
    for c in snapshot.consumers:
        consumers.add_row(c["name"], str(c["pending"]), f"{c['idle_seconds']:.1f} s")
    if not snapshot.consumers:
        consumers.add_row("(no worker has read the stream yet)")
    settled = _table("Deliveries settled per minute", "OUTCOME", "1m", "5m", "15m")
    for outcome, windows in snapshot.settled_per_minute.items():
        settled.add_row(outcome, *_rates(windows))
    return [sources, line, consumers, settled]


def _postgres_parts(snapshot: Snapshot) -> list[RenderableType]:
    dead = _table("Dead letters now", "FAILURE CLASS", "COUNT")
    for failure_class, count in snapshot.dead_letters.items():
        dead.add_row(failure_class, str(count))
    dead.add_row("total", str(sum(snapshot.dead_letters.values())))
    failures = _table("Newest failures", "FAILED", "INGEST ID", "EVENT TYPE", "CLASS", "REASON")
    for f in snapshot.newest_failures:
        failures.add_row(
            dlq.when(datetime.fromisoformat(f["failed_at"])),
            f["ingest_id"],
            f["event_type"] or "(unknown)",
            f["failure_class"],
            dlq.short(f["reason"]),
        )
    if not snapshot.newest_failures:
        failures.add_row("(none)")
    return [dead, failures]


@click.command()
@click.option("--json", "json_output", is_flag=True, help="One JSON document on stdout.")
@click.option(
    "--watch",
    type=click.FloatRange(min=0.5),
    metavar="SECONDS",
    help="Refresh every SECONDS until Ctrl-C (with --json: one document per line).",
)
@click.pass_obj
def stats(settings: Settings, json_output: bool, watch: float | None) -> None:
    """Per source the last delivery and requests per minute; the stream's backlog, lag and
    oldest age; each worker's pending entries; deliveries settled per minute by outcome; dead
    letters by class and the newest failures (never bodies). Exits 3 if Redis or Postgres
    did not answer (after showing what the other holds)."""
    client = redis_clients.for_worker(settings, REDIS_TIMEOUT_SECONDS)
    out = console()
    snapshot = read(settings, client)
    try:
        if watch is None:
            if json_output:
                click.echo(json.dumps(as_json(snapshot), indent=2))
            else:
                out.print(render(snapshot))
        elif json_output:
            while True:
                click.echo(json.dumps(as_json(snapshot)))
                _sleep(watch)
                snapshot = read(settings, client)
        else:
            with Live(render(snapshot), console=out, auto_refresh=False) as live:
                while True:
                    _sleep(watch)
                    snapshot = read(settings, client)
                    live.update(render(snapshot), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    if snapshot.unreachable:
        click.echo(
            f"zenoti-ingest: {'; '.join(snapshot.unreachable.values())}",
            err=True,
        )
        sys.exit(exits.UNAVAILABLE)
