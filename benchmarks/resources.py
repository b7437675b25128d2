"""Resident memory and CPU time of process trees, sampled in a thread through a measurement."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psutil
from procs import Proc


@dataclass(frozen=True)
class Usage:
    """A process tree's resident memory and CPU time, sampled over a measurement:
    (seconds since its start, RSS bytes, CPU seconds used so far)."""

    samples: list[tuple[float, int, float]]

    @property
    def start(self) -> int:
        return self.samples[0][1]

    @property
    def end(self) -> int:
        return self.samples[-1][1]

    @property
    def peak(self) -> int:
        return max(rss for _, rss, _ in self.samples)

    @property
    def settled(self) -> int:
        """RSS after the first quarter of the measurement: buffers and caches have grown by
        then."""
        quarter = self.samples[-1][0] / 4
        return next(rss for seconds, rss, _ in self.samples if seconds >= quarter)

    @property
    def growth(self) -> float:
        """From a quarter of the way to the end: what flat means for a long run."""
        return self.end / self.settled - 1 if self.settled else float("nan")

    @property
    def cpu_seconds(self) -> float:
        return self.samples[-1][2] - self.samples[0][2]

    @property
    def cores(self) -> float:
        """CPU seconds per wall second: how many cores it kept busy on average."""
        wall = self.samples[-1][0] - self.samples[0][0]
        return self.cpu_seconds / wall if wall else float("nan")


class UsageWatch:
    """Samples process trees' RSS and CPU time every `interval` seconds in a thread."""

    def __init__(self, procs: Sequence[Proc], interval: float = 0.25) -> None:
        self._procs = procs
        self._interval = interval
        self._samples: list[list[tuple[float, int, float]]] = [[] for _ in procs]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def __enter__(self) -> UsageWatch:
        self._started = time.monotonic()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def usage(self) -> list[Usage]:
        """One Usage per process tree, in the order given."""
        return [Usage(list(samples)) for samples in self._samples]

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        seconds = time.monotonic() - self._started
        for proc, samples in zip(self._procs, self._samples, strict=True):
            samples.append((seconds, *proc.resources()))


class MachineLoad:
    """System-wide CPU use and load average over a phase: how busy the machine was, by us and
    by anything else running on it."""

    def __enter__(self) -> MachineLoad:
        self._cpu = psutil.cpu_times()
        self._load = os.getloadavg()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        after = psutil.cpu_times()
        total = sum(after) - sum(self._cpu)
        idle = after.idle - self._cpu.idle
        iowait = getattr(after, "iowait", 0.0) - getattr(self._cpu, "iowait", 0.0)
        self.busy = 1 - (idle + iowait) / total if total else float("nan")
        self.iowait = iowait / total if total else float("nan")
        self.loads = (self._load, os.getloadavg()[0])

    def describe(self) -> str:
        return (
            f"load average {self.loads[0]:.1f} → {self.loads[1]:.1f}, CPU "
            f"{self.busy:.0%} busy, {self.iowait:.0%} iowait"
        )
