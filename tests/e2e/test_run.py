"""`zenoti-ingest run` as a newcomer meets it: in a terminal, stopped with Ctrl-C, started twice,
with the CLI beside it, and with bad settings."""

from __future__ import annotations

import fcntl
import os
import pty
import shutil
import socket
import subprocess
import tempfile
import termios
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from psycopg.conninfo import make_conninfo

from tests.fixtures import ports
from tests.fixtures import services as suite_services
from tests.fixtures.processes import CLI, wait_for
from tests.fixtures.services import settings_env
from zenoti_ingest.settings import Settings

STOP_SECONDS = 5.0
BANNER = b"zenoti-ingest is running"


class Terminal:
    """`zenoti-ingest run` in a pseudo-terminal of its own, as a person starts it: the
    terminal's Ctrl-C (a \\x03 typed) reaches its foreground process group."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.master, slave = pty.openpty()
        self.output = bytearray()
        self.log = log
        self.process = subprocess.Popen(
            [*CLI, "run"],
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),  # our controlling tty
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        # The terminal is read all along, as a person's is: a full one would block the run.
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    def wait_for_banner(self) -> None:
        wait_for(lambda: BANNER in self.output or self.process.poll() is not None, 180, "banner")
        assert BANNER in self.output, self.output.decode(errors="replace")[-3000:]

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")

    def close(self) -> None:
        """Stop the run as a person would (a failed test must not leave its servers behind:
        SIGKILL would orphan an embedded redis-server), then kill what still lingers."""
        if self.process.poll() is None:
            self.ctrl_c()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.write_bytes(bytes(self.output))
        os.close(self.master)


@pytest.fixture
def run_env(settings: Settings) -> Iterator[dict[str, str]]:
    """The environment of a newcomer's `run`: this test's services, a free port, and a data
    folder outside pytest's private temporary root (embedded Postgres runs initdb as another
    user, who must reach it)."""
    root = suite_services.DATA_DIR.resolve()
    root.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    yield {
        **os.environ,
        **settings_env(settings),
        "PORT": str(ports.free_port()),
        "ZENOTI_INGEST_HOST": "127.0.0.1",
        "ZENOTI_INGEST_DATA_DIR": str(data_dir),
    }
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def terminal(run_env: dict[str, str], tmp_path: Path) -> Iterator[Terminal]:
    started: list[Terminal] = []

    def start() -> Terminal:
        started.append(Terminal(run_env, tmp_path / f"terminal-{len(started)}.log"))
        return started[-1]

    yield start
    for each in started:
        each.close()


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


@pytest.mark.timeout(600)  # 20 starts: about 100 s here, more on a loaded machine
def test_ctrl_c_stops_every_child_within_5_seconds_20_times_in_a_row(terminal, run_env):
    """Each time: the launcher and everything it started (granian's workers, Celery's pool)
    are gone within 5 s of Ctrl-C in its terminal, and the port is free for the next start."""
    port = int(run_env["PORT"])
    took = []
    for attempt in range(20):
        run = terminal()
        run.wait_for_banner()
        children = descendants(run.process.pid)
        assert {"granian", "celery"} <= {" ".join(c.cmdline()).split()[2] for c in children}
        started = time.monotonic()
        run.ctrl_c()
        _, alive = psutil.wait_procs([psutil.Process(run.process.pid), *children], STOP_SECONDS)
        took.append(time.monotonic() - started)
        assert alive == [], f"attempt {attempt}: still alive after {STOP_SECONDS} s: {alive}"
        assert run.process.wait(1) == 0
        assert port_free(port), f"attempt {attempt}: port {port} still taken"
    print(f"Ctrl-C to everything gone: max {max(took):.2f} s, mean {sum(took) / 20:.2f} s")


def test_a_second_run_in_the_same_folder_is_refused_and_the_first_keeps_answering(
    terminal, run_env
):
    """The second start says who is running (pid, URL) and exits non-zero; the first one's
    ingress still answers and its embedded or found servers are untouched."""
    first = terminal()
    first.wait_for_banner()
    second = subprocess.run([*CLI, "run"], env=run_env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert f"pid {first.process.pid}" in second.stderr
    assert f"http://127.0.0.1:{run_env['PORT']}" in second.stderr
    assert "Traceback" not in second.stderr
    with urllib.request.urlopen(f"http://127.0.0.1:{run_env['PORT']}/readyz", timeout=5) as r:
        assert r.status == 200
    assert first.process.poll() is None


def test_a_start_after_a_killed_run_stops_what_it_left_and_starts(terminal):
    """SIGKILL leaves the launcher no chance to stop its children; the next start in the same
    folder stops them (they still hold the port) and comes up."""
    crashed = terminal()
    crashed.wait_for_banner()
    left = descendants(crashed.process.pid)
    crashed.process.kill()
    crashed.process.wait()
    again = terminal()
    again.wait_for_banner()
    assert not [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_the_cli_beside_a_run_reaches_its_embedded_servers(terminal, run_env):
    """With nothing answering at the configured URLs, `run` starts embedded servers; the CLI
    run with the same environment says it uses them, and reaches them (dlq, psql)."""
    run_env["REDIS_URL"] = f"redis://127.0.0.1:{ports.free_port()}/0"
    run_env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{ports.free_port()}/zenoti_ingest"
    run = terminal()
    run.wait_for_banner()
    assert b"embedded" in run.output
    listed = subprocess.run(
        [*CLI, "dlq", "list"], env=run_env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert f"(pid {run.process.pid})" in listed.stderr
    counted = subprocess.run(
        [*CLI, "psql", "-tAc", "SELECT count(*) FROM webhook_events"],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (counted.returncode, counted.stdout.strip()) == (0, "0"), counted.stderr


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def bad_settings(postgres_url: str, taken_port: int) -> dict[str, tuple[list[str], dict, int, str]]:
    """{case: (command, environment changes, exit code, what the one line says)}."""
    return {
        "mysql url": (["run"], {"DATABASE_URL": "mysql://x"}, 2, "DATABASE_URL"),
        "http redis url": (["run"], {"REDIS_URL": "http://x"}, 2, "REDIS_URL"),
        "port out of range": (["run"], {"PORT": "99999"}, 2, "PORT"),
        "port taken": (["run"], {"PORT": str(taken_port)}, 2, f"PORT {taken_port}"),
        "database missing": (
            ["dlq", "list"],
            {"DATABASE_URL": make_conninfo(postgres_url, dbname="zi_no_such_database")},
            3,
            "does not exist",
        ),
        "role refused": (
            ["run"],
            {"DATABASE_URL": make_conninfo(postgres_url, user="zi_no_such_role", dbname="x")},
            3,
            "refused",
        ),
    }


CASES = [
    "mysql url",
    "http redis url",
    "port out of range",
    "port taken",
    "database missing",
    "role refused",
]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_setting_is_one_line_and_an_exit_code(
    case, run_env, postgres_service, listening_port
):
    """No traceback: one line naming the variable (or the port), exit 2 for a setting, 3 for a
    service that refuses or lacks the database; a refused Postgres is never replaced by an
    embedded one."""
    command, changes, code, says = bad_settings(postgres_service.url, listening_port)[case]
    result = subprocess.run(
        [*CLI, *command], env={**run_env, **changes}, capture_output=True, text=True, timeout=60
    )
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert (result.returncode, len(lines)) == (code, 1), result.stderr
    assert says in lines[0] and "Traceback" not in result.stderr
    assert not (Path(run_env["ZENOTI_INGEST_DATA_DIR"]) / "postgres").exists()
