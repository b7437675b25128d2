"""Children that can be stopped whole: each in a process group of its own, all of it stopped.

Each child starts in a new session, so a terminal's Ctrl-C reaches only the launcher, which
decides; stopping sends SIGTERM to every child's whole group (granian's worker processes,
Celery's pool), then SIGKILL to what is left after the grace period. The launcher is made the
subreaper of everything below it, so a grandchild whose parent died first is still ours to
wait for, and is reaped rather than left as a zombie that would look alive; and each child gets
SIGTERM should the launcher die without stopping them (SIGKILL).

Written here rather than taken from honcho: honcho 2.0's Manager forks a pump process per
child (which would inherit the launcher's run lock), has no "second Ctrl-C stops at once",
and prefixes every line, so JSON log lines stop being JSON.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
POLL_SECONDS = 0.05


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]

    @property
    def group(self) -> int:
        return self.process.pid  # a session leader's pid is its group id


class ProcessGroup:
    def __init__(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # Linux only; elsewhere best effort
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1)
        self.children: list[Child] = []

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> Child:
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child = Child(name, process)
        self.children.append(child)
        return child

    @property
    def groups(self) -> tuple[int, ...]:
        return tuple(child.group for child in self.children)

    def exited(self) -> Child | None:
        """The first child that has exited, if any (its group may still have members)."""
        self.reap()
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop(self, grace_seconds: float, stop_now: Callable[[], bool] = lambda: False) -> None:
        """SIGTERM every group; SIGKILL what is left after grace_seconds, or at once when
        stop_now() turns true (a second Ctrl-C). Returns when every group is empty."""
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while self._alive_groups():
            if stop_now() or time.monotonic() > deadline:
                self._signal(signal.SIGKILL)
            time.sleep(POLL_SECONDS)

    def reap(self) -> None:
        """Wait for any exited descendant (ours by subreaping), so it does not linger."""
        for child in self.children:
            child.process.poll()
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass

    def _alive_groups(self) -> list[int]:
        self.reap()
        alive = []
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, 0)
                alive.append(group)
        return alive

    def _signal(self, signum: int) -> None:
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signum)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the launcher dies, even by SIGKILL (Linux), so
    a killed launcher leaves no ingress or worker behind (they stop their own children)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
