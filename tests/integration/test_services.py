"""services.ensure_*: use the configured Redis/Postgres, or start, reuse and stop embedded ones."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator

import psutil
import psycopg
import pytest
import redis
from psycopg import conninfo
from structlog import testing

from tests.fixtures import ports
from tests.fixtures import services as suite_services
from zenoti_ingest import errors, services


def _data_folder() -> Iterator[pathlib.Path]:
    """A data folder outside pytest's own temporary root: embedded Postgres runs initdb as
    another user, who must be able to reach it, and pytest keeps its root private (0700)."""
    root = suite_services.DATA_DIR.resolve()
    root.mkdir(parents=True, exist_ok=True)
    path = pathlib.Path(tempfile.mkdtemp(prefix="services-", dir=root))
    yield path
    shutil.rmtree(path, ignore_errors=True)


tmp_path = pytest.fixture(_data_folder, name="tmp_path")
elsewhere = pytest.fixture(_data_folder, name="elsewhere")  # for servers of another launcher


@pytest.fixture
def free_port() -> int:
    return ports.free_port()


@pytest.fixture(autouse=True)
def no_server_left_behind(tmp_path: pathlib.Path, elsewhere: pathlib.Path) -> Iterator[None]:
    """Fails a test whose embedded servers outlive it (and kills them, so none leak)."""
    yield
    left = [p for p in psutil.process_iter() if _works_in(p, tmp_path) or _works_in(p, elsewhere)]
    for process in left:
        process.kill()
    assert left == []


def _works_in(process: psutil.Process, directory: pathlib.Path) -> bool:
    """Whether a live process (a zombie is dead: it holds no port or file) works in directory."""
    try:
        return not _gone(process) and pathlib.Path(process.cwd()).is_relative_to(directory)
    except psutil.Error:
        return False


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _kill_pidfile_owner(pidfile: pathlib.Path) -> None:
    """SIGKILL the server a pidfile names, as a crash would, and wait until its workers are gone."""
    os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
    _, alive = psutil.wait_procs(
        [p for p in psutil.process_iter() if _works_in(p, pidfile.parent)], timeout=10
    )
    assert alive == []


def _ensure_in_another_process(function: str, url: str, data_dir: pathlib.Path) -> None:
    """Run ensure_* in a process that exits without stop(), like a launcher that crashed."""
    code = f"""
        import pathlib
        from zenoti_ingest import errors, services
        services.{function}({url!r}, pathlib.Path({str(data_dir)!r}))
    """
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True, timeout=30)


def test_configured_services_are_used_as_they_are(
    tmp_path: pathlib.Path, elsewhere: pathlib.Path, free_port: int
) -> None:
    """Servers answering at the configured URLs (started here, by another launcher in another
    data folder) are used (Postgres through its maintenance database: the target one need not
    exist), nothing is started or written, stop() leaves them alone, and the log names each
    without its password."""
    running = [
        services.ensure_redis(f"redis://127.0.0.1:{free_port}/0", elsewhere),
        services.ensure_postgres(f"postgresql://postgres@127.0.0.1:{free_port}/x", elsewhere),
    ]
    try:
        redis_url = running[0].url
        socket_url = running[1].url  # postgresql://postgres@/x?host=<socket dir>&port=…
        with_password = socket_url.replace("postgres@", "postgres:s3cret@")  # trust ignores it
        with testing.capture_logs() as logs:
            found = [
                services.ensure_redis(redis_url, tmp_path),
                services.ensure_postgres(with_password, tmp_path),
            ]
        for service in found:
            service.stop()
        assert [(s.name, s.url, s.embedded) for s in found] == [
            ("redis", redis_url, False),
            ("postgres", with_password, False),
        ]
        assert redis.Redis.from_url(redis_url).ping()
        with psycopg.connect(socket_url, dbname="postgres") as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        assert list(tmp_path.iterdir()) == []
        assert [(e["event"], e["service"], e["embedded"], e["url"]) for e in logs] == [
            ("service_ready", "redis", False, redis_url),
            ("service_ready", "postgres", False, with_password.replace("s3cret", "***")),
        ]
    finally:
        for service in running:
            service.stop()


def test_embedded_redis_takes_a_stream_entry_and_stops(
    tmp_path: pathlib.Path, free_port: int
) -> None:
    """With nothing at the configured port, an embedded Redis starts on it keeping the db
    number, configured as a queue (AOF, noeviction); it takes an XADD, says so in the log, and
    stop() closes the port; stopping twice is harmless."""
    with testing.capture_logs() as logs:
        service = services.ensure_redis(f"redis://:pw@127.0.0.1:{free_port}/3", tmp_path)
    try:
        assert (service.embedded, service.url) == (True, f"redis://127.0.0.1:{free_port}/3")
        client = redis.Redis.from_url(service.url, decode_responses=True)
        client.xadd("deliveries", {"ingest_id": "1"})
        assert client.xlen("deliveries") == 1
        assert client.connection_pool.connection_kwargs["db"] == 3
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        client.close()
    finally:
        service.stop()
    assert not _listening(free_port)
    service.stop()
    assert [(e["event"], e["service"], e["embedded"], e["url"]) for e in logs] == [
        ("service_ready", "redis", True, service.url)
    ]


def test_embedded_postgres_answers_select_1_and_stops(
    tmp_path: pathlib.Path, free_port: int
) -> None:
    """With nothing at the configured port, an embedded Postgres starts; its URL keeps the
    configured database name and, once that database is created, answers `select 1`; stop()
    really stops the server and a later ensure_postgres in the same process starts it again."""
    service = services.ensure_postgres(f"postgresql://app@127.0.0.1:{free_port}/zi_x", tmp_path)
    try:
        assert service.embedded
        assert conninfo.conninfo_to_dict(service.url)["dbname"] == "zi_x"
        with psycopg.connect(service.url, dbname="postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE zi_x")
        with psycopg.connect(service.url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        service.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(service.url, connect_timeout=2)
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()
    service.stop()

    again = services.ensure_postgres(f"postgresql://app@127.0.0.1:{free_port}/zi_x", tmp_path)
    try:
        with psycopg.connect(again.url) as conn:  # the database created above is still there
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        again.stop()


def test_a_crash_leaves_nothing_that_blocks_the_next_start(
    tmp_path: pathlib.Path, free_port: int
) -> None:
    """After a SIGKILLed embedded server, its stale pidfile (naming a dead pid, or a pid some
    other live process now has) does not block the next start, that process is not signalled,
    and a queued stream entry survives the crash."""
    redis_url = f"redis://127.0.0.1:{free_port}/0"
    service = services.ensure_redis(redis_url, tmp_path)
    redis.Redis.from_url(service.url).xadd("deliveries", {"ingest_id": "1"})
    for stale_pid in (None, os.getpid()):
        _kill_pidfile_owner(tmp_path / "redis" / "redis.pid")
        if stale_pid is not None:
            (tmp_path / "redis" / "redis.pid").write_text(f"{stale_pid}\n")
        service = services.ensure_redis(redis_url, tmp_path)
        assert redis.Redis.from_url(service.url).xlen("deliveries") == 1
    service.stop()

    database_url = f"postgresql://app@127.0.0.1:{free_port}/postgres"
    service = services.ensure_postgres(database_url, tmp_path)
    pidfile = tmp_path / "postgres" / "postmaster.pid"
    _kill_pidfile_owner(pidfile)
    lines = pidfile.read_text().splitlines()  # still says "ready", and now names us
    pidfile.write_text("\n".join([str(os.getpid()), *lines[1:]]) + "\n")
    service = services.ensure_postgres(database_url, tmp_path)
    try:
        with psycopg.connect(service.url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        service.stop()


def test_a_server_left_running_by_an_earlier_run_is_reused_or_restarted(
    tmp_path: pathlib.Path, free_port: int
) -> None:
    """Servers an earlier launcher left running keep running without stop(); the next run
    reuses Postgres and a Redis still at the configured URL (and stop() stops them), and
    restarts a Redis that had to take another port, so one AOF never has two writers."""
    redis_url = f"redis://127.0.0.1:{free_port}/0"
    database_url = f"postgresql://app@127.0.0.1:{free_port}/postgres"
    _ensure_in_another_process("ensure_redis", redis_url, tmp_path)
    _ensure_in_another_process("ensure_postgres", database_url, tmp_path)
    pid = int((tmp_path / "postgres" / "postmaster.pid").read_text().split()[0])
    found = [
        services.ensure_redis(redis_url, tmp_path),
        services.ensure_postgres(database_url, tmp_path),
    ]
    assert [(s.url == redis_url, s.embedded) for s in found] == [(True, True), (False, True)]
    assert int((tmp_path / "postgres" / "postmaster.pid").read_text().split()[0]) == pid
    for service in found:
        service.stop()
    assert not _listening(free_port)

    with socket.create_server(("127.0.0.1", free_port)):  # the configured port is taken
        _ensure_in_another_process("ensure_redis", redis_url, tmp_path)
        earlier = psutil.Process(int((tmp_path / "redis" / "redis.pid").read_text()))
        service = services.ensure_redis(redis_url, tmp_path)
        assert service.url != redis_url
        assert _gone(earlier)
        service.stop()


def test_only_a_local_url_may_be_replaced_by_an_embedded_server():
    """A remote URL that does not answer is an outage to report: no embedded server takes its
    place (checked without sending anything to a remote address)."""
    for host in ("db.example.com", "10.1.2.3"):
        with pytest.raises(errors.ServiceUnavailable, match="only for local URLs"):
            services._only_for_local("postgres", host)
    for host in (None, "", "localhost", "127.0.0.1", "::1", "/var/run/postgresql"):
        services._only_for_local("postgres", host)
