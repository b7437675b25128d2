"""How each process under test starts: ours through the CLI, the baselines with the same flags."""

from __future__ import annotations

import http.client
import sys
from dataclasses import dataclass

import procs

from cli import launcher
from zenoti_ingest.settings import Settings

HOST = "127.0.0.1"
WEBHOOK_PATH = "/webhooks/zenoti"
READY_TIMEOUT_SECONDS = 60.0
# Our processes: their own key prefix and Celery node name, on the benchmark's databases.
OURS = Settings(
    redis_prefix="zi_bench",
    worker_name="zi-bench@%h",
    ingress_workers=2,
    worker_concurrency=2,
    log_format="json",
)


@dataclass(frozen=True)
class Server:
    proc: procs.Proc
    port: int

    @property
    def webhook_url(self) -> str:
        return f"http://{HOST}:{self.port}{WEBHOOK_PATH}"


def ours_env(redis_url: str, database_url: str, port: int = OURS.port) -> dict[str, str]:
    """The environment `zenoti-ingest serve` and `worker` read their Settings from."""
    ours = OURS.replace(redis_url=redis_url, database_url=database_url, port=port, host=HOST)
    return procs.env(**ours.to_env())


def baseline_env(redis_url: str, database_url: str = "") -> dict[str, str]:
    return procs.env(
        BENCH_REDIS_URL=redis_url, BENCH_BROKER_URL=redis_url, BENCH_DATABASE_URL=database_url
    )


def ours_serve_command(port: int) -> list[str]:
    return [procs.executable("zenoti-ingest"), "serve"]  # the port comes from $PORT


def granian_command(target: str, port: int) -> list[str]:
    """Exactly launcher.serve_command's server and flags, serving a plain WSGI `target`."""
    command = launcher.serve_command(
        Settings(host=HOST, port=port, ingress_workers=OURS.ingress_workers)
    )
    return [target if arg == command[-1] else arg for arg in command if arg != "--factory"]


def gunicorn_command(target: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        "4",
        "--worker-class",
        "sync",
        "--bind",
        f"{HOST}:{port}",
        "--log-level",
        "warning",
        target,
    ]


def start_server(
    group: procs.Group, name: str, command: list[str], env: dict[str, str], port: int
) -> Server:
    """Start a server and wait until GET /readyz answers 200."""
    server = Server(group.start(name, command, env), port)
    procs.wait_until(
        lambda: ready(port),
        timeout=READY_TIMEOUT_SECONDS,
        what=f"{name} to answer /readyz",
        watch=[server.proc],
    )
    return server


def start_ours(group: procs.Group, redis_url: str, database_url: str) -> Server:
    port = procs.free_port()
    return start_server(
        group, "ours-serve", ours_serve_command(port), ours_env(redis_url, database_url, port), port
    )


def start_worker(group: procs.Group, name: str, redis_url: str, database_url: str) -> procs.Proc:
    """`zenoti-ingest worker` (Celery, prefork, concurrency 2) on the benchmark's databases."""
    return group.start(
        name, [procs.executable("zenoti-ingest"), "worker"], ours_env(redis_url, database_url)
    )


def ready(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=1)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()
