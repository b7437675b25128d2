"""`run`: services first, then migrations, then the ingress and a worker, owned as one group.

The commands are the Procfile's (`zenoti-ingest serve`, `zenoti-ingest worker` run the same
argument lists built here). Ctrl-C or SIGTERM stops every process the launcher started, and
theirs, within STOP_GRACE_SECONDS; a second Ctrl-C stops them at once.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import signal
import socket
import sys
import time
import urllib.parse
from pathlib import Path

import click
import redis

from cli import process_group, run_state
from ingress import app as ingress_app
from worker.hosting import leases
from zenoti_ingest import errors, logs, migrate, redis_clients, services
from zenoti_ingest.settings import Settings

log = logs.get_logger(__name__)

STOP_GRACE_SECONDS = 3.0  # then SIGKILL; the embedded servers stop after, well inside 5 s
READY_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.1


def serve_command(settings: Settings, quiet: bool = False) -> list[str]:
    """The ingress: granian serving the WSGI factory with one Redis pool per worker process."""
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--factory",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        str(settings.ingress_workers),
        "--log-level",
        "warning" if quiet else "info",
        "--no-access-log",  # one structured line per failure is ours to write
        # A killed worker process is replaced instead of taking the server down with it.
        "--respawn-failed-workers",
        # A client that has not sent its headers within 10 s (Zenoti's own time limit) is cut
        # off; slow bodies are the job of the proxy in front (see the README's SECURITY).
        "--http1-header-read-timeout",
        "10000",
        "ingress.app:create_app_from_env",
    ]


def worker_command(settings: Settings, quiet: bool = False) -> list[str]:
    """A Celery worker with one pool process (and one drain slot) per unit of concurrency.
    Quiet: Celery's own lines at WARNING and no banner (our structured lines are unchanged)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "--app",
        "worker.hosting.celery_app",
        *(["--quiet"] if quiet else []),
        "worker",
        "--concurrency",
        str(settings.worker_concurrency),
        "--hostname",
        settings.worker_name,
        "--loglevel",
        "WARNING" if quiet else settings.log_level,
        "--without-gossip",
        "--without-mingle",  # not used; they cost a round trip per worker
    ]


def check_port_free(settings: Settings, port: int | None = None, variable: str = "PORT") -> None:
    """ConfigError naming the variable when something already listens there (before we start):
    PORT for the ingress, ZENOTI_INGEST_METRICS_PORT for the exporter."""
    port = settings.port if port is None else port
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as granian binds
        try:
            sock.bind((settings.host, port))
        except OSError as exc:
            reason = "is in use" if exc.errno == errno.EADDRINUSE else f"can't be used ({exc})"
            raise errors.ConfigError(
                f"{variable} {port} on {settings.host} {reason}: stop what listens there or"
                f" set {variable} to a free port"
            ) from None


def run(settings: Settings, verbose: bool = False) -> int:
    """The whole pipeline on this machine; returns the exit code."""
    signals: list[int] = []
    lock = run_state.acquire(settings.data_dir)
    redis_service = postgres_service = None
    group: process_group.ProcessGroup | None = None

    def on_signal(signum: int, _frame: object) -> None:
        signals.append(signum)
        if len(signals) > 1 and group is None:  # still starting: stop at once
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, on_signal) for s in _STOP_SIGNALS}
    state = run_state.RunState(
        pid=os.getpid(),
        ingress_url=_ingress_url(settings),
        configured_redis_url=settings.redis_url,
        configured_database_url=settings.database_url,
    )
    try:
        run_state.write(settings.data_dir, state)
        ingress_app.check_settings(settings)
        check_port_free(settings)
        redis_service = services.ensure_redis(settings.redis_url, settings.data_dir)
        postgres_service = services.ensure_postgres(settings.database_url, settings.data_dir)
        migrate.migrate(postgres_service.url)
        if signals:
            return 0
        group = process_group.ProcessGroup()
        env = _child_env(redis_service.url, postgres_service.url)
        group.start("ingress", serve_command(settings, quiet=not verbose), env)
        group.start("worker", worker_command(settings, quiet=not verbose), env)
        metrics = _start_metrics(settings, group, env)
        state = run_state.RunState(
            **{
                **state.__dict__,
                "redis_url": redis_service.url,
                "database_url": postgres_service.url,
                "redis_embedded": redis_service.embedded,
                "postgres_embedded": postgres_service.embedded,
                "process_groups": group.groups,
            }
        )
        run_state.write(settings.data_dir, state)
        return _watch(settings, group, state, signals, metrics)
    finally:
        if group is not None:
            group.stop(STOP_GRACE_SECONDS, stop_now=lambda: len(signals) > 1)
        for service in (postgres_service, redis_service):
            if service is not None:
                service.stop()
        run_state.release(settings.data_dir, lock)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _watch(
    settings: Settings,
    group: process_group.ProcessGroup,
    state: run_state.RunState,
    signals: list[int],
    metrics: str,
) -> int:
    """Until a signal or a child's exit: announce once the ingress answers, then wait."""
    ready_by = time.monotonic() + READY_TIMEOUT_SECONDS
    announced = False
    while not signals:
        exited = group.exited()
        if exited is not None and exited.name == METRICS:  # not worth stopping the pipeline
            click.echo(
                f"zenoti-ingest: the metrics exporter exited with code "
                f"{exited.process.returncode}; the pipeline goes on without /metrics",
                err=True,
            )
            group.children.remove(exited)
        elif exited is not None:
            click.echo(
                f"zenoti-ingest: the {exited.name} exited with code "
                f"{exited.process.returncode}; stopping everything",
                err=True,
            )
            return 1
        if not announced and _ready(settings, state):
            _announce(settings, state, metrics)
            announced = True
        elif not announced and time.monotonic() > ready_by:
            click.echo(
                f"zenoti-ingest: not ready within {READY_TIMEOUT_SECONDS:.0f} s (the ingress at "
                f"{state.ingress_url}/readyz, the worker's drain slots); stopping everything",
                err=True,
            )
            return 1
        time.sleep(POLL_SECONDS)
    click.echo("zenoti-ingest: stopping (Ctrl-C again stops at once)", err=True)
    return 0


METRICS = "metrics"


def metrics_command() -> list[str]:
    """The exporter `zenoti-ingest metrics` serves, as `run`'s child (see cli/metrics.py)."""
    return [sys.executable, "-m", "cli.metrics"]


def _start_metrics(
    settings: Settings, group: process_group.ProcessGroup, env: dict[str, str]
) -> str:
    """Start the exporter if its port is free; the banner's line either way. A taken port (a
    second run on this machine) leaves the pipeline without /metrics, never stopped."""
    try:
        check_port_free(settings, settings.metrics_port, "ZENOTI_INGEST_METRICS_PORT")
    except errors.ConfigError as exc:
        return f"not served: {exc}"
    port = str(settings.metrics_port)
    group.start(METRICS, metrics_command(), {**env, "ZENOTI_INGEST_METRICS_PORT": port})
    return f"{_ingress_url(settings).rsplit(':', 1)[0]}:{port}/metrics"


def _child_env(redis_url: str, database_url: str) -> dict[str, str]:
    """The children see the services in use, and find `zenoti-ingest` beside this Python."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
    }


def _ingress_url(settings: Settings) -> str:
    """Where this machine reaches the ingress (a wildcard bind answers on loopback)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def _ready(settings: Settings, state: run_state.RunState) -> bool:
    """The ingress answers /readyz and the worker holds its drain slots."""
    target = urllib.parse.urlsplit(state.ingress_url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=1)
    try:
        connection.request("GET", "/readyz")
        if connection.getresponse().status != 200:
            return False
    except OSError:
        return False
    finally:
        connection.close()
    client = redis_clients.for_probe(state.redis_url, timeout_seconds=1)
    try:
        return leases.live_slots(client, settings.redis_prefix) > 0
    except redis.RedisError:
        return False
    finally:
        client.close()


def _announce(settings: Settings, state: run_state.RunState, metrics: str) -> None:
    """The banner, last, once the ingress answers: where to post, how to look."""

    def which(embedded: bool) -> str:
        return f"embedded, in {settings.data_dir}/" if embedded else "found at the configured URL"

    cli = _cli_hint()
    click.echo(
        "\n"
        f"zenoti-ingest is running (pid {state.pid}); Ctrl-C stops everything it started.\n"
        f"  post webhooks to  {state.ingress_url}/webhooks/zenoti/<event type>\n"
        f"  try it            make demo   (posts a sample of every event type)\n"
        f"  metrics           {metrics}\n"
        f"  redis             {services.redact(state.redis_url)}  "
        f"({which(state.redis_embedded)})\n"
        f"  postgres          {services.redact(state.database_url)}  "
        f"({which(state.postgres_embedded)})\n"
        f"  query it          {cli} psql -c 'SELECT count(*) FROM appointments'\n"
        f"  the CLI           {cli} --help   (run here, it uses these same servers)\n"
        f"  logs              this terminal: our lines as "
        f"{'JSON' if not sys.stderr.isatty() else 'text'}; Celery and granian at warning"
        " (`zenoti-ingest run --verbose` for all)\n",
        err=True,
    )


def _cli_hint() -> str:
    """How to call the CLI from this directory: the venv's script, relative when it can be."""
    script = Path(sys.executable).parent / "zenoti-ingest"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)
