"""One `run` per data folder: its lock, and the state file through which the CLI finds its services.

`run` holds an exclusive flock on <data dir>/run.lock for as long as it lives (the kernel lets go
when the process dies, however it dies) and writes <data dir>/run.json: its pid, the process
groups of its children, and for each service the URL it was configured with and the URL it
really uses (an embedded server's differs). Another `run` in the same folder is refused with
what that file says; any other command run with the same settings uses the same servers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from zenoti_ingest import errors
from zenoti_ingest.settings import Settings

LOCK_FILE = "run.lock"
STATE_FILE = "run.json"
LEFTOVER_TIMEOUT_SECONDS = 10.0


class AlreadyRunning(errors.ZenotiIngestError):
    """Another `run` holds this data folder."""

    def __init__(self, data_dir: Path, state: RunState | None) -> None:
        where = f" (pid {state.pid}, webhooks at {state.ingress_url})" if state else ""
        if state is not None and not state.redis_url:
            where = f" (pid {state.pid}, still starting)"
        super().__init__(
            f"already running in {data_dir}{where}; stop it first (Ctrl-C in its"
            " terminal, or kill its pid), or give this one its own ZENOTI_INGEST_DATA_DIR"
        )


@dataclasses.dataclass(frozen=True)
class RunState:
    """What a `run` wrote of itself; the service URLs are empty until its services answer."""

    pid: int
    ingress_url: str
    configured_redis_url: str
    configured_database_url: str
    redis_url: str = ""
    database_url: str = ""
    redis_embedded: bool = False
    postgres_embedded: bool = False
    process_groups: tuple[int, ...] = ()


def acquire(data_dir: Path) -> IO[str]:
    """Take the folder's lock, or raise AlreadyRunning; keep the returned file open meanwhile.

    A folder whose state file names a launcher that is gone was left by a `run` that was killed:
    the process groups it names are stopped first (nothing of it may keep a port or the lock).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = (data_dir / LOCK_FILE).open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        state = _read_file(data_dir)
        if state is None or _alive(state.pid):
            lock.close()
            raise AlreadyRunning(data_dir, state) from None
        # Its launcher is gone; what it started may still hold the lock (and a port).
        _stop_groups(state)
        if not _wait_for(lock):
            lock.close()
            raise AlreadyRunning(data_dir, state) from None
    _stop_groups(_read_file(data_dir))
    (data_dir / STATE_FILE).unlink(missing_ok=True)
    return lock


def _wait_for(lock: IO[str]) -> bool:
    """The lock, once the killed processes that inherited it are gone (a few seconds)."""
    deadline = time.monotonic() + LEFTOVER_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(0.05)
    return False


def _stop_groups(state: RunState | None) -> None:
    """SIGKILL the process groups a killed run left, and wait until they are gone (ports)."""
    groups = state.process_groups if state else ()
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    deadline = time.monotonic() + LEFTOVER_TIMEOUT_SECONDS
    while any(_alive(g, os.killpg) for g in groups) and time.monotonic() < deadline:
        time.sleep(0.05)


def _alive(pid: int, send: Callable[[int, int], None] = os.kill) -> bool:
    """Whether a process (or, with send=os.killpg, a process group) still exists."""
    try:
        send(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write(data_dir: Path, state: RunState) -> None:
    """Record the running state (atomically: a reader never sees half a file)."""
    path = data_dir / STATE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(dataclasses.asdict(state), indent=2))
    temporary.replace(path)


def release(data_dir: Path, lock: IO[str]) -> None:
    (data_dir / STATE_FILE).unlink(missing_ok=True)
    lock.close()


def read(data_dir: Path) -> RunState | None:
    """The state of the `run` that holds this folder now, or None when none does."""
    lock_path = data_dir / LOCK_FILE
    if not lock_path.exists():
        return None
    with lock_path.open("a") as probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_file(data_dir)  # held: a run is alive
        fcntl.flock(probe, fcntl.LOCK_UN)
    return None


def adopt(settings: Settings) -> tuple[Settings, RunState | None]:
    """Settings that reach the servers a live `run` in the same data folder uses, where this
    process is configured as that run was (an embedded server answers elsewhere)."""
    state = read(settings.data_dir)
    if state is None or not state.redis_url or not state.database_url:
        return settings, None
    changes = {}
    if settings.redis_url == state.configured_redis_url:
        changes["redis_url"] = state.redis_url
    if settings.database_url == state.configured_database_url:
        changes["database_url"] = state.database_url
    if not changes:
        return settings, None
    return dataclasses.replace(settings, **changes), state


def _read_file(data_dir: Path) -> RunState | None:
    try:
        raw = json.loads((data_dir / STATE_FILE).read_text())
        raw["process_groups"] = tuple(raw.get("process_groups", ()))
        return RunState(**raw)
    except (OSError, ValueError, TypeError):
        return None
