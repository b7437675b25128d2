"""The processes a benchmark runs: each in its own process group, watched, measured, stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psutil

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # tests.fixtures: helpers shared with the test suite
from tests.fixtures import ports  # noqa: E402

free_port = ports.free_port  # the one copy, shared with the tests
STOP_TIMEOUT_SECONDS = 20.0
POLL_SECONDS = 0.05

T = TypeVar("T")


class ProcessDied(RuntimeError):
    """A process the benchmark needs exited early; the message ends with its log's tail."""


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def check(self) -> None:
        """Raise ProcessDied if the process is gone."""
        if not self.running():
            raise ProcessDied(
                f"{self.name} exited with code {self.popen.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def resources(self) -> tuple[int, float]:
        """(RSS bytes, CPU seconds) of the process and all its live descendants."""
        try:
            root = psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0, 0.0
        rss, cpu = 0, 0.0
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess), process.oneshot():
                rss += process.memory_info().rss
                times = process.cpu_times()
                cpu += times.user + times.system
        return rss, cpu


class Group:
    """Starts processes in new sessions; stops every one still running on exit (also Ctrl-C)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Processes started inside are stopped when it ends, however it ends: before the
        databases they use are emptied and dropped."""
        earlier = {id(proc) for proc in self.procs}
        try:
            yield
        finally:
            for proc in [p for p in reversed(self.procs) if id(p) not in earlier]:
                self.stop(proc)

    def start(self, name: str, command: Sequence[str], env: dict[str, str]) -> Proc:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                list(command),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        """SIGTERM the leader (a graceful stop), then SIGKILL whatever is left of its group."""
        if proc.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                say(f"  {proc.name} ignored SIGTERM for {STOP_TIMEOUT_SECONDS:.0f} s: killed")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.popen.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def run(self, name: str, command: Sequence[str], env: dict[str, str], timeout: float) -> str:
        """Run a process to completion; its output. ProcessDied if it fails or overruns."""
        return self.finish(self.start(name, command, env), timeout)

    def finish(self, proc: Proc, timeout: float) -> str:
        """Wait for a process to end by itself; its output. ProcessDied if it fails or overruns."""
        try:
            proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop(proc)
            raise ProcessDied(f"{proc.name} did not finish within {timeout:.0f} s") from None
        self.stop(proc)
        if proc.popen.returncode != 0:
            raise ProcessDied(
                f"{proc.name} exited with code {proc.popen.returncode}:\n{proc.log_tail()}"
            )
        return proc.output()


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float,
    what: str,
    watch: Sequence[Proc] = (),
    interval: float = POLL_SECONDS,
) -> T:
    """Poll `condition()` until it is truthy; fail early if a watched process dies."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        for proc in watch:
            proc.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def say(message: str) -> None:
    """Progress, on stderr (the closing table goes to stdout)."""
    print(message, file=sys.stderr, flush=True)


def env(**extra: str) -> dict[str, str]:
    """This environment, with benchmarks/ importable (for baselines.*) and `extra` set."""
    path = os.pathsep.join(filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def executable(name: str) -> str:
    """A console script installed next to this interpreter (the venv's `zenoti-ingest`)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise FileNotFoundError(
            f"{name} not found next to {sys.executable}: "
            "install the project (pip install -e '.[bench]')"
        )
    return str(path)
