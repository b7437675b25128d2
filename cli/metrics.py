"""`zenoti-ingest metrics`: /metrics for Prometheus, on ZENOTI_INGEST_METRICS_PORT, until stopped.

One exporter per deployment is enough: it reads the totals every process recorded in Redis,
the stream, the drain slots and Postgres at each scrape (zenoti_ingest/exposition.py).
"""

from __future__ import annotations

import functools
import signal
import socket
import socketserver
import sys
import threading
from wsgiref import simple_server

import click
import prometheus_client

from cli import exits, launcher
from worker.hosting import leases
from zenoti_ingest import errors, exposition, logs, redis_clients
from zenoti_ingest import settings as settings_module
from zenoti_ingest.settings import Settings

PORT_VARIABLE = "ZENOTI_INGEST_METRICS_PORT"
REDIS_TIMEOUT_SECONDS = 2.0  # a scrape answers well inside Prometheus's 10 s, Redis down or not

log = logs.get_logger(__name__)


@click.command("metrics")
@click.pass_obj
def metrics_command(settings: Settings) -> None:
    """Serve /metrics for Prometheus on $ZENOTI_INGEST_METRICS_PORT (default 9808): every
    process's counts, the stream and the dead letters, read from Redis and Postgres."""
    serve(settings)


def registry(
    settings: Settings,
) -> tuple[prometheus_client.CollectorRegistry, exposition.DeadLetters]:
    """Our collector alone: the exporter's own process is of no interest to anyone."""
    client = redis_clients.for_probe(settings.redis_url, REDIS_TIMEOUT_SECONDS)
    dead_letters = exposition.DeadLetters(settings.database_url)
    collector = exposition.Collector(
        settings,
        client,
        workers_alive=functools.partial(leases.live_slots, client, settings.redis_prefix),
        dead_letters=dead_letters,
    )
    found = prometheus_client.CollectorRegistry(auto_describe=False)
    found.register(collector)
    return found, dead_letters


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True  # a scrape in flight never holds up the stop


class _Quiet(simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """One line per scrape would be noise."""


def start_server(
    settings: Settings, found: prometheus_client.CollectorRegistry
) -> tuple[simple_server.WSGIServer, threading.Thread]:
    """The HTTP server (IPv4 or IPv6, as the host says), serving from a thread."""
    host, port = settings.host, settings.metrics_port
    family, *_, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    server_class = type("Server", (_Server,), {"address_family": family})
    server = simple_server.make_server(
        address[0], port, exposition.wsgi_app(found), server_class, handler_class=_Quiet
    )
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return server, thread


def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then stop the HTTP server and return."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    found, dead_letters = registry(settings)
    try:
        try:
            server, thread = start_server(settings, found)
        except OSError:
            launcher.check_port_free(settings, settings.metrics_port, PORT_VARIABLE)
            raise  # the port was free again: not a port problem after all
        log.info("metrics_serving", url=f"http://{settings.host}:{settings.metrics_port}/metrics")
        while not stop.wait(1):
            pass
        server.shutdown()
        server.server_close()
        thread.join(5)
        log.info("metrics_stopped")
    finally:
        dead_letters.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    # `run`'s child (cli/launcher.py): the same server, without the CLI's adoption of a running
    # `run`'s servers (it is that run's) and the line that would announce it.
    settings = settings_module.get_settings()
    logs.configure(settings)
    try:
        serve(settings)
    except errors.ConfigError as exc:
        click.echo(f"zenoti-ingest metrics: {exc}", err=True)
        sys.exit(exits.CONFIG)
