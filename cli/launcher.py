"""Start the ingress and worker processes, and (for `run`) own them and the embedded services."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import click

from zenoti_ingest import logs, migrate, services
from zenoti_ingest.settings import Settings

log = logs.get_logger(__name__)

_PR_SET_PDEATHSIG = 1
_STOP_TIMEOUT_SECONDS = 15.0


def serve_command(settings: Settings) -> list[str]:
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
        "--no-access-log",  # one structured line per failure is ours to write
        # A killed worker process is replaced instead of taking the server down with it.
        "--respawn-failed-workers",
        # A client that has not sent its headers within 10 s (Zenoti's own time limit) is cut
        # off; slow bodies are the job of the proxy in front (see the README's SECURITY).
        "--http1-header-read-timeout",
        "10000",
        "ingress.app:create_app_from_env",
    ]


def worker_command(settings: Settings) -> list[str]:
    """A Celery worker with one pool process (and one drain slot) per unit of concurrency."""
    return [
        sys.executable,
        "-m",
        "celery",
        "--app",
        "worker.hosting.celery_app",
        "worker",
        "--concurrency",
        str(settings.worker_concurrency),
        "--hostname",
        settings.worker_name,
        "--loglevel",
        settings.log_level,
        "--without-gossip",
        "--without-mingle",  # not used; they cost a round trip per worker
    ]


def run(settings: Settings) -> int:
    """Services, schema, ingress and worker as one group; returns the exit code."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    pidfile = settings.data_dir / "run.pids"
    _stop_leftovers(pidfile)
    stopping: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda s, _f: stopping.append(s))

    redis_service = services.ensure_redis(settings.redis_url, settings.data_dir)
    postgres_service: services.Service | None = None
    children: list[subprocess.Popen] = []
    try:
        postgres_service = services.ensure_postgres(settings.database_url, settings.data_dir)
        migrate.migrate(postgres_service.url)
        env = {**os.environ, "REDIS_URL": redis_service.url, "DATABASE_URL": postgres_service.url}
        for command in (serve_command(settings), worker_command(settings)):
            children.append(subprocess.Popen(command, env=env, preexec_fn=_die_with_parent))
        pidfile.write_text("\n".join(str(c.pid) for c in children))
        _say_where(settings, redis_service, postgres_service)
        while not stopping:
            exited = [c for c in children if c.poll() is not None]
            if exited:
                click.echo(
                    f"zenoti-ingest: {exited[0].args[4]} exited with code "
                    f"{exited[0].returncode}; stopping everything",
                    err=True,
                )
                return 1
            time.sleep(0.2)
        return 0
    finally:
        _stop(children)
        pidfile.unlink(missing_ok=True)
        if postgres_service is not None:
            postgres_service.stop()
        redis_service.stop()


def _say_where(
    settings: Settings, redis_service: services.Service, postgres_service: services.Service
) -> None:
    def which(service: services.Service) -> str:
        return "embedded, started here" if service.embedded else "found at the configured URL"

    click.echo(
        f"zenoti-ingest is running (Ctrl-C stops it)\n"
        f"  webhooks: http://127.0.0.1:{settings.port}/webhooks/zenoti[/<event type>]\n"
        f"  redis:    {_without_password(redis_service.url)} ({which(redis_service)})\n"
        f"  postgres: {_without_password(postgres_service.url)} ({which(postgres_service)})",
        err=True,
    )


def _without_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + _STOP_TIMEOUT_SECONDS
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _stop_leftovers(pidfile: Path) -> None:
    """A launcher that crashed may have left its children: stop them before starting again."""
    if not pidfile.exists():
        return
    for line in pidfile.read_text().split():
        pid = int(line)
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"granian" in cmdline or b"celery" in cmdline:
                os.kill(pid, signal.SIGTERM)
                log.warning("leftover_process_stopped", pid=pid)
    pidfile.unlink()


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the launcher dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
